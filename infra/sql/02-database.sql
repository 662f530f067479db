-- 02-database.sql: the ledger's schema in one database, once, BEFORE 'custody db upgrade'.
-- Run as a superuser in the ledger's database (created with: createdb -O custody_owner custody);
-- safe to run again:
--
--   psql -X -v ON_ERROR_STOP=1 -d custody -f infra/sql/02-database.sql
--
-- The ledger lives in the schema "custody", owned by custody_owner. Both login roles find it
-- first on their search_path in this database; nobody else may connect or create objects here.

\set ON_ERROR_STOP on
SET client_min_messages = warning;

CREATE SCHEMA IF NOT EXISTS custody AUTHORIZATION custody_owner;
ALTER SCHEMA custody OWNER TO custody_owner;
REVOKE ALL ON SCHEMA custody FROM PUBLIC;
GRANT USAGE ON SCHEMA custody TO custody_app;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;

SELECT format('ALTER DATABASE %I OWNER TO custody_owner', current_database()) \gexec
SELECT format('REVOKE ALL ON DATABASE %I FROM PUBLIC', current_database()) \gexec
SELECT format('GRANT CONNECT ON DATABASE %I TO custody_admin, custody_app', current_database()) \gexec
SELECT format('ALTER ROLE custody_admin IN DATABASE %I SET search_path = custody', current_database()) \gexec
SELECT format('ALTER ROLE custody_app IN DATABASE %I SET search_path = custody', current_database()) \gexec

-- tables a later migration adds can at least be read by the application at once
ALTER DEFAULT PRIVILEGES FOR ROLE custody_owner IN SCHEMA custody GRANT SELECT ON TABLES TO custody_app;
