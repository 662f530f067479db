-- 01-roles.sql: the custody roles, once per PostgreSQL cluster. Run as a superuser (or a role
-- with CREATEROLE); safe to run again. Passwords are optional psql variables:
--
--   psql -X -v ON_ERROR_STOP=1 -v admin_password="$ADMIN_PW" -v app_password="$APP_PW" \
--        -d postgres -f infra/sql/01-roles.sql
--
--   custody_owner  NOLOGIN. Owns the ledger's schema, tables, indexes and trigger function.
--                  Nobody logs in as it, so nobody holds the owner's rights (ALTER, DROP,
--                  disabling triggers) in a normal session.
--   custody_admin  LOGIN, a member of custody_owner whose sessions act as custody_owner
--                  (ALTER ROLE ... SET role): only for 'custody db upgrade' and infra/sql/.
--                  Keep its password off the ingest stations and audit hosts.
--   custody_app    LOGIN, what ingest stations and auditors connect as: SELECT and INSERT on
--                  the ledger tables only (03-grants.sql). No UPDATE, DELETE or TRUNCATE, no
--                  ownership, so it cannot drop or disable the append-only triggers either.

\set ON_ERROR_STOP on
SET client_min_messages = warning;

SELECT NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'custody_owner') AS missing \gset
\if :missing
CREATE ROLE custody_owner NOLOGIN;
\endif
SELECT NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'custody_admin') AS missing \gset
\if :missing
CREATE ROLE custody_admin LOGIN;
\endif
SELECT NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'custody_app') AS missing \gset
\if :missing
CREATE ROLE custody_app LOGIN;
\endif

ALTER ROLE custody_owner NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;
ALTER ROLE custody_admin LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;
ALTER ROLE custody_app LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS NOINHERIT;

GRANT custody_owner TO custody_admin;
ALTER ROLE custody_admin SET role = 'custody_owner';

\if :{?admin_password}
ALTER ROLE custody_admin PASSWORD :'admin_password';
\endif
\if :{?app_password}
ALTER ROLE custody_app PASSWORD :'app_password';
\endif
