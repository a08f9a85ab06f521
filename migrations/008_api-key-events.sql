-- Up Migration
-- The audit trail of a user's API keys: stored (or replaced), disabled,
-- enabled, deleted. mcp_events belongs to an instance; a key's changes have
-- none. api_key_id has no foreign key on purpose: the trail outlives a deleted
-- key (it never holds the key, only its hint). A user's trail goes with the user.

CREATE TABLE api_key_events (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    api_key_id UUID NOT NULL,
    mcp_type_id UUID NOT NULL REFERENCES mcp_types(id) ON DELETE CASCADE,
    event_type VARCHAR(20) NOT NULL,
    event_data JSONB NOT NULL DEFAULT '{}',
    ip_address INET,
    user_agent TEXT,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT check_key_event_type CHECK (event_type IN ('stored', 'disabled', 'enabled', 'deleted'))
);

CREATE INDEX idx_api_key_events_user ON api_key_events(user_id, created_at DESC);
CREATE INDEX idx_api_key_events_key ON api_key_events(api_key_id, created_at DESC);

ALTER TABLE api_key_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE api_key_events FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON api_key_events
  USING (user_id = minimcp_current_user_id() OR minimcp_is_system())
  WITH CHECK (user_id = minimcp_current_user_id() OR minimcp_is_system());

-- Append-only for the API; the agent has no business here.
GRANT SELECT, INSERT ON api_key_events TO minimcp_app;

-- Down Migration
REVOKE ALL ON api_key_events FROM minimcp_app;
DROP TABLE api_key_events;
