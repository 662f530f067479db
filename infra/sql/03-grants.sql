-- 03-grants.sql: what the application role may do, AFTER every 'custody db upgrade'. Run as
-- a superuser or custody_admin in the ledger's database; safe to run again:
--
--   psql -X -v ON_ERROR_STOP=1 -d custody -f infra/sql/03-grants.sql
--
-- custody_app reads everything in the schema (the ledger, and alembic_version / schema_info,
-- which every command checks) and appends to the six ledger tables. Nothing else: no UPDATE,
-- DELETE, TRUNCATE, REFERENCES or TRIGGER on any table, whatever was granted before.
-- The ledger uses no sequences (event numbers are assigned under the append lock), and the
-- advisory lock functions are usable by every role.

\set ON_ERROR_STOP on
SET client_min_messages = warning;

REVOKE ALL ON ALL TABLES IN SCHEMA custody FROM PUBLIC, custody_app;
GRANT SELECT ON ALL TABLES IN SCHEMA custody TO custody_app;
GRANT INSERT ON custody.events, custody.evidence, custody.tree_nodes, custody.checkpoints, custody.event_signatures, custody.checkpoint_anchors TO custody_app;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA custody FROM PUBLIC;
