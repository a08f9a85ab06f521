-- Up Migration
-- Row-level security: a session reaches only the rows of the user named by the
-- transaction-local setting minimcp.user_id. System work (the maintenance job)
-- sets minimcp.scope = 'system'. The agent role works across users.
-- The application connects as minimcp_app (API) or minimcp_agent (host
-- agents): roles that own nothing and have no BYPASSRLS. Roles belong to the
-- cluster, not the database, so they are created if missing and kept on down.

DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'minimcp_app') THEN
    CREATE ROLE minimcp_app NOLOGIN NOSUPERUSER NOBYPASSRLS;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'minimcp_agent') THEN
    CREATE ROLE minimcp_agent NOLOGIN NOSUPERUSER NOBYPASSRLS;
  END IF;
END;
$$;

CREATE FUNCTION minimcp_current_user_id() RETURNS uuid
LANGUAGE sql STABLE
AS $$ SELECT nullif(current_setting('minimcp.user_id', true), '')::uuid $$;

CREATE FUNCTION minimcp_is_system() RETURNS boolean
LANGUAGE sql STABLE
AS $$ SELECT coalesce(current_setting('minimcp.scope', true), '') = 'system' $$;

ALTER TABLE api_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE api_keys FORCE ROW LEVEL SECURITY;
ALTER TABLE mcp_instances ENABLE ROW LEVEL SECURITY;
ALTER TABLE mcp_instances FORCE ROW LEVEL SECURITY;
ALTER TABLE mcp_logs ENABLE ROW LEVEL SECURITY;
ALTER TABLE mcp_logs FORCE ROW LEVEL SECURITY;
ALTER TABLE mcp_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE mcp_events FORCE ROW LEVEL SECURITY;
ALTER TABLE user_api_tokens ENABLE ROW LEVEL SECURITY;
ALTER TABLE user_api_tokens FORCE ROW LEVEL SECURITY;

CREATE POLICY tenant_isolation ON api_keys
  USING (user_id = minimcp_current_user_id() OR minimcp_is_system())
  WITH CHECK (user_id = minimcp_current_user_id() OR minimcp_is_system());
CREATE POLICY tenant_isolation ON mcp_instances
  USING (user_id = minimcp_current_user_id() OR minimcp_is_system())
  WITH CHECK (user_id = minimcp_current_user_id() OR minimcp_is_system());
CREATE POLICY tenant_isolation ON user_api_tokens
  USING (user_id = minimcp_current_user_id() OR minimcp_is_system())
  WITH CHECK (user_id = minimcp_current_user_id() OR minimcp_is_system());
-- Logs and events belong to whoever may see their instance (the subquery is
-- itself filtered by the policy on mcp_instances).
CREATE POLICY tenant_isolation ON mcp_logs
  USING (EXISTS (SELECT 1 FROM mcp_instances mi WHERE mi.id = mcp_instance_id))
  WITH CHECK (EXISTS (SELECT 1 FROM mcp_instances mi WHERE mi.id = mcp_instance_id));
CREATE POLICY tenant_isolation ON mcp_events
  USING (EXISTS (SELECT 1 FROM mcp_instances mi WHERE mi.id = mcp_instance_id))
  WITH CHECK (EXISTS (SELECT 1 FROM mcp_instances mi WHERE mi.id = mcp_instance_id));

CREATE POLICY agent_access ON api_keys FOR SELECT TO minimcp_agent USING (true);
CREATE POLICY agent_access ON mcp_instances TO minimcp_agent USING (true) WITH CHECK (true);
CREATE POLICY agent_access ON mcp_logs TO minimcp_agent USING (true) WITH CHECK (true);
CREATE POLICY agent_access ON mcp_events TO minimcp_agent USING (true) WITH CHECK (true);

GRANT USAGE ON SCHEMA public TO minimcp_app, minimcp_agent;

GRANT SELECT, INSERT, UPDATE, DELETE ON
  users, user_api_tokens, mcp_types, nodes, api_keys, mcp_instances,
  port_allocations, system_settings, mcp_logs, mcp_events
TO minimcp_app;

-- The agent gets only what it needs: its node, the pool, instance runtime
-- columns, keys to decrypt, and append-only logs and events.
GRANT SELECT, INSERT, UPDATE ON nodes TO minimcp_agent;
GRANT SELECT ON mcp_types, system_settings, api_keys TO minimcp_agent;
GRANT SELECT ON mcp_instances TO minimcp_agent;
GRANT UPDATE (status, process_id, error_message, last_accessed, stats, updated_at) ON mcp_instances TO minimcp_agent;
GRANT SELECT, INSERT, UPDATE, DELETE ON port_allocations TO minimcp_agent;
GRANT SELECT, INSERT ON mcp_logs, mcp_events TO minimcp_agent;

GRANT EXECUTE ON FUNCTION minimcp_current_user_id(), minimcp_is_system() TO minimcp_app, minimcp_agent;
GRANT EXECUTE ON FUNCTION minimcp_maintain_partitions(integer, integer) TO minimcp_app, minimcp_agent;

-- Down Migration
REVOKE ALL ON FUNCTION minimcp_maintain_partitions(integer, integer) FROM minimcp_app, minimcp_agent;
REVOKE ALL ON
  users, user_api_tokens, mcp_types, nodes, api_keys, mcp_instances,
  port_allocations, system_settings, mcp_logs, mcp_events
FROM minimcp_app, minimcp_agent;
REVOKE USAGE ON SCHEMA public FROM minimcp_app, minimcp_agent;

DROP POLICY agent_access ON mcp_events;
DROP POLICY agent_access ON mcp_logs;
DROP POLICY agent_access ON mcp_instances;
DROP POLICY agent_access ON api_keys;
DROP POLICY tenant_isolation ON mcp_events;
DROP POLICY tenant_isolation ON mcp_logs;
DROP POLICY tenant_isolation ON user_api_tokens;
DROP POLICY tenant_isolation ON mcp_instances;
DROP POLICY tenant_isolation ON api_keys;

ALTER TABLE user_api_tokens NO FORCE ROW LEVEL SECURITY;
ALTER TABLE user_api_tokens DISABLE ROW LEVEL SECURITY;
ALTER TABLE mcp_events NO FORCE ROW LEVEL SECURITY;
ALTER TABLE mcp_events DISABLE ROW LEVEL SECURITY;
ALTER TABLE mcp_logs NO FORCE ROW LEVEL SECURITY;
ALTER TABLE mcp_logs DISABLE ROW LEVEL SECURITY;
ALTER TABLE mcp_instances NO FORCE ROW LEVEL SECURITY;
ALTER TABLE mcp_instances DISABLE ROW LEVEL SECURITY;
ALTER TABLE api_keys NO FORCE ROW LEVEL SECURITY;
ALTER TABLE api_keys DISABLE ROW LEVEL SECURITY;

DROP FUNCTION minimcp_is_system();
DROP FUNCTION minimcp_current_user_id();
