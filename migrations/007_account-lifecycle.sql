-- Up Migration
-- Account lifecycle (issue 21): email verification tokens (single use,
-- expiring, kept as SHA-256 only), the audit trail of account changes that
-- belong to no instance (verified, deleted by an admin, erased by its owner),
-- and the admin setting that decides whether unverified users may create
-- instances (false: nothing changes until an admin turns it on).

CREATE TABLE email_verification_tokens (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    token_hash CHAR(64) UNIQUE NOT NULL,
    -- The address the link was sent to: a token verifies that address only.
    email VARCHAR(255) NOT NULL,
    expires_at TIMESTAMP WITH TIME ZONE NOT NULL,
    used_at TIMESTAMP WITH TIME ZONE,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP WITH TIME ZONE DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT check_verification_token_hash_hex CHECK (token_hash ~ '^[0-9a-f]{64}$')
);
CREATE INDEX idx_email_verification_tokens_user ON email_verification_tokens(user_id)
    WHERE used_at IS NULL;
CREATE TRIGGER touch_email_verification_tokens BEFORE UPDATE ON email_verification_tokens
    FOR EACH ROW EXECUTE FUNCTION minimcp_touch_updated_at();

-- Who did what to an account. `actor_user_id` is null for the bootstrap admin
-- token (actor = 'bootstrap-admin') and for the system. Rows outlive an erased
-- user's personal fields: they hold ids, never an email or a name.
CREATE TABLE account_events (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    actor_user_id UUID REFERENCES users(id) ON DELETE SET NULL,
    actor VARCHAR(20) NOT NULL,
    event_type VARCHAR(50) NOT NULL,
    event_data JSONB NOT NULL DEFAULT '{}',
    ip_address INET,
    user_agent TEXT,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT check_account_event_actor CHECK (actor IN ('user', 'admin', 'bootstrap-admin', 'system'))
);
CREATE INDEX idx_account_events_user ON account_events(user_id, created_at);

ALTER TABLE email_verification_tokens ENABLE ROW LEVEL SECURITY;
ALTER TABLE email_verification_tokens FORCE ROW LEVEL SECURITY;
ALTER TABLE account_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE account_events FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON email_verification_tokens
  USING (user_id = minimcp_current_user_id() OR minimcp_is_system())
  WITH CHECK (user_id = minimcp_current_user_id() OR minimcp_is_system());
CREATE POLICY tenant_isolation ON account_events
  USING (user_id = minimcp_current_user_id() OR minimcp_is_system())
  WITH CHECK (user_id = minimcp_current_user_id() OR minimcp_is_system());

GRANT SELECT, INSERT, UPDATE, DELETE ON email_verification_tokens TO minimcp_app;
-- Append-only for the API: the audit trail is not rewritten.
GRANT SELECT, INSERT ON account_events TO minimcp_app;

INSERT INTO system_settings (key, value, description) VALUES
('users.require_verified_email', 'false', 'Only users with a verified email may create instances')
ON CONFLICT (key) DO NOTHING;

-- Down Migration
DELETE FROM system_settings WHERE key = 'users.require_verified_email';
REVOKE ALL ON email_verification_tokens, account_events FROM minimcp_app;
DROP TABLE account_events;
DROP TABLE email_verification_tokens;
