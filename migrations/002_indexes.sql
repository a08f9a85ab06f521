-- Up Migration
-- Every index of the schema document, plus those the architecture needs.

CREATE INDEX idx_mcp_instances_status ON mcp_instances(status) WHERE deleted_at IS NULL;
CREATE INDEX idx_mcp_instances_expires_at ON mcp_instances(expires_at) WHERE deleted_at IS NULL;
CREATE INDEX idx_mcp_instances_access_token ON mcp_instances(access_token_hash) WHERE deleted_at IS NULL;
CREATE INDEX idx_mcp_instances_port ON mcp_instances(assigned_port) WHERE deleted_at IS NULL;
CREATE INDEX idx_mcp_instances_process_id ON mcp_instances(process_id) WHERE deleted_at IS NULL;
CREATE INDEX idx_mcp_instances_user_status ON mcp_instances(user_id, status) WHERE deleted_at IS NULL;
CREATE INDEX idx_mcp_instances_type ON mcp_instances(mcp_type_id) WHERE deleted_at IS NULL;
-- The schema document had assigned_port UNIQUE; with many nodes a port is
-- unique among the live instances of one node.
CREATE UNIQUE INDEX idx_mcp_instances_node_port_live ON mcp_instances(node_id, assigned_port)
    WHERE deleted_at IS NULL AND status IN ('pending', 'running');
CREATE INDEX idx_mcp_instances_node_status ON mcp_instances(node_id, status) WHERE deleted_at IS NULL;
CREATE INDEX idx_mcp_instances_api_key ON mcp_instances(api_key_id);

CREATE INDEX idx_mcp_logs_instance_timestamp ON mcp_logs(mcp_instance_id, timestamp DESC);
CREATE INDEX idx_mcp_logs_timestamp ON mcp_logs(timestamp DESC);
CREATE INDEX idx_mcp_logs_level ON mcp_logs(level) WHERE level IN ('warn', 'error');

CREATE INDEX idx_mcp_events_instance ON mcp_events(mcp_instance_id, created_at DESC);
CREATE INDEX idx_mcp_events_user ON mcp_events(user_id);

CREATE INDEX idx_port_allocations_available ON port_allocations(is_available, port);
CREATE INDEX idx_port_allocations_mcp ON port_allocations(mcp_instance_id);
CREATE INDEX idx_port_allocations_node_available ON port_allocations(node_id, is_available, port);

CREATE INDEX idx_users_email ON users(email) WHERE deleted_at IS NULL;
CREATE INDEX idx_api_keys_user_type ON api_keys(user_id, mcp_type_id) WHERE is_active = true;
CREATE INDEX idx_api_keys_type ON api_keys(mcp_type_id);
CREATE INDEX idx_user_api_tokens_user ON user_api_tokens(user_id);

-- Down Migration
DROP INDEX idx_user_api_tokens_user;
DROP INDEX idx_api_keys_type;
DROP INDEX idx_api_keys_user_type;
DROP INDEX idx_users_email;
DROP INDEX idx_port_allocations_node_available;
DROP INDEX idx_port_allocations_mcp;
DROP INDEX idx_port_allocations_available;
DROP INDEX idx_mcp_events_user;
DROP INDEX idx_mcp_events_instance;
DROP INDEX idx_mcp_logs_level;
DROP INDEX idx_mcp_logs_timestamp;
DROP INDEX idx_mcp_logs_instance_timestamp;
DROP INDEX idx_mcp_instances_api_key;
DROP INDEX idx_mcp_instances_node_status;
DROP INDEX idx_mcp_instances_node_port_live;
DROP INDEX idx_mcp_instances_type;
DROP INDEX idx_mcp_instances_user_status;
DROP INDEX idx_mcp_instances_process_id;
DROP INDEX idx_mcp_instances_port;
DROP INDEX idx_mcp_instances_access_token;
DROP INDEX idx_mcp_instances_expires_at;
DROP INDEX idx_mcp_instances_status;
