-- Up Migration
-- The audit trail of admin actions that belong to no instance (mcp_events
-- needs an instance): who changed what, from where. The first such action is
-- a system setting change (PATCH /v1/settings/{key}). The actor is the admin
-- user, or NULL with actor_kind 'bootstrap-admin' for the configured token;
-- a user's later hard delete keeps the row and clears the reference.

CREATE TABLE admin_events (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    actor_user_id UUID REFERENCES users(id) ON DELETE SET NULL,
    actor_kind VARCHAR(20) NOT NULL,
    event_type VARCHAR(50) NOT NULL,
    -- What it acted on, e.g. the setting's key.
    subject VARCHAR(200) NOT NULL,
    event_data JSONB NOT NULL DEFAULT '{}',
    ip_address INET,
    user_agent TEXT,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT check_admin_event_actor CHECK (
        actor_kind IN ('user', 'bootstrap-admin')
        AND (actor_kind = 'user' OR actor_user_id IS NULL)
    )
);

CREATE INDEX idx_admin_events_subject ON admin_events(subject, created_at DESC);

-- Append-only for the API: no UPDATE or DELETE grant.
GRANT SELECT, INSERT ON admin_events TO minimcp_app;

-- Down Migration
REVOKE ALL ON admin_events FROM minimcp_app;
DROP TABLE admin_events;
