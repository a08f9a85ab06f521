-- Up Migration
-- The tables of shared/database-schema.md, with the additions of ARCHITECTURE.md
-- ("Beyond the schema document"); departures are listed in the README.

CREATE FUNCTION minimcp_touch_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  NEW.updated_at := CURRENT_TIMESTAMP;
  RETURN NEW;
END;
$$;

CREATE TABLE users (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    email VARCHAR(255) UNIQUE NOT NULL,
    password_hash VARCHAR(255) NOT NULL,
    name VARCHAR(255) NOT NULL,
    role VARCHAR(20) NOT NULL DEFAULT 'user',
    is_active BOOLEAN DEFAULT true,
    email_verified BOOLEAN DEFAULT false,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP WITH TIME ZONE DEFAULT CURRENT_TIMESTAMP,
    deleted_at TIMESTAMP WITH TIME ZONE,
    CONSTRAINT check_user_role CHECK (role IN ('user', 'admin'))
);

-- API tokens that clients present as `Authorization: Bearer`; only the
-- SHA-256 of the token is kept.
CREATE TABLE user_api_tokens (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name VARCHAR(100) NOT NULL,
    token_hash CHAR(64) UNIQUE NOT NULL,
    token_prefix VARCHAR(16) NOT NULL,
    last_used_at TIMESTAMP WITH TIME ZONE,
    expires_at TIMESTAMP WITH TIME ZONE,
    revoked_at TIMESTAMP WITH TIME ZONE,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP WITH TIME ZONE DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT check_token_hash_hex CHECK (token_hash ~ '^[0-9a-f]{64}$')
);

CREATE TABLE mcp_types (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    name VARCHAR(50) UNIQUE NOT NULL,
    display_name VARCHAR(100) NOT NULL,
    description TEXT,
    icon_url VARCHAR(500),
    -- A built-in server script (run with node), or NULL when `command` is set.
    server_script VARCHAR(255),
    -- Any stdio MCP server: executable and arguments, registered by an admin.
    command VARCHAR(500),
    args JSONB NOT NULL DEFAULT '[]',
    -- Extra environment variables for the child, e.g. {"GITHUB_TOKEN": "{{key}}"}.
    env_mapping JSONB NOT NULL DEFAULT '{}',
    requires_key BOOLEAN NOT NULL DEFAULT true,
    -- Optional regular expression a stored key must match for this type.
    key_pattern VARCHAR(500),
    config_template JSONB NOT NULL DEFAULT '{}',
    -- Optional JSON Schema that an instance's config must satisfy.
    config_schema JSONB,
    required_scopes JSONB DEFAULT '[]',
    resource_limits JSONB DEFAULT '{"cpu": "0.5", "memory": "512m"}',
    max_duration_minutes INTEGER DEFAULT 60,
    is_active BOOLEAN DEFAULT true,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP WITH TIME ZONE DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT check_type_name CHECK (name ~ '^[a-z][a-z0-9_-]{0,49}$'),
    CONSTRAINT check_type_runnable CHECK (server_script IS NOT NULL OR command IS NOT NULL),
    CONSTRAINT check_max_duration CHECK (max_duration_minutes BETWEEN 1 AND 525600)
);

-- Compute nodes, registered by their host agents.
CREATE TABLE nodes (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    name VARCHAR(100) UNIQUE NOT NULL,
    grpc_address VARCHAR(255) NOT NULL,
    public_host VARCHAR(255) NOT NULL,
    port_range_start INTEGER NOT NULL DEFAULT 3001,
    port_range_end INTEGER NOT NULL DEFAULT 3100,
    capacity INTEGER NOT NULL DEFAULT 100,
    status VARCHAR(20) NOT NULL DEFAULT 'active',
    last_heartbeat TIMESTAMP WITH TIME ZONE,
    agent_version VARCHAR(50),
    stats JSONB NOT NULL DEFAULT '{}',
    created_at TIMESTAMP WITH TIME ZONE DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP WITH TIME ZONE DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT check_node_status CHECK (status IN ('active', 'draining', 'down')),
    CONSTRAINT check_node_port_range CHECK (
        port_range_start BETWEEN 1024 AND 65535
        AND port_range_end BETWEEN port_range_start AND 65535
    ),
    CONSTRAINT check_node_capacity CHECK (capacity >= 0)
);

CREATE TABLE api_keys (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id UUID REFERENCES users(id) ON DELETE CASCADE,
    mcp_type_id UUID NOT NULL REFERENCES mcp_types(id) ON DELETE CASCADE,
    -- AES-256-GCM ciphertext of the key (base64), under a per-key data key.
    encrypted_key TEXT NOT NULL,
    key_hint VARCHAR(20),
    -- 96-bit GCM nonce (hex).
    encryption_iv VARCHAR(32) NOT NULL,
    -- GCM authentication tag (hex).
    auth_tag VARCHAR(32) NOT NULL,
    -- The data key, wrapped by the key provider (base64).
    wrapped_data_key TEXT NOT NULL,
    -- Which provider wrapped it ('aws-kms' | 'local') and under which master key.
    key_provider VARCHAR(20) NOT NULL,
    master_key_id VARCHAR(2048) NOT NULL,
    encryption_version SMALLINT NOT NULL DEFAULT 1,
    is_active BOOLEAN DEFAULT true,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP WITH TIME ZONE DEFAULT CURRENT_TIMESTAMP,
    expires_at TIMESTAMP WITH TIME ZONE,
    UNIQUE(user_id, mcp_type_id),
    CONSTRAINT check_key_provider CHECK (key_provider IN ('aws-kms', 'local'))
);

CREATE TABLE mcp_instances (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id UUID REFERENCES users(id) ON DELETE CASCADE,
    mcp_type_id UUID NOT NULL REFERENCES mcp_types(id),
    api_key_id UUID REFERENCES api_keys(id) ON DELETE SET NULL,
    node_id UUID REFERENCES nodes(id),
    process_id INTEGER,
    -- SHA-256 (hex) of the access token; the token itself is shown once.
    access_token_hash CHAR(64) UNIQUE NOT NULL,
    -- First characters of the token, not secret, to tell tokens apart.
    access_token_prefix VARCHAR(16) NOT NULL,
    access_url VARCHAR(500) NOT NULL,
    assigned_port INTEGER,
    status VARCHAR(20) NOT NULL DEFAULT 'pending',
    expires_at TIMESTAMP WITH TIME ZONE NOT NULL,
    config JSONB DEFAULT '{}',
    error_message TEXT,
    last_accessed TIMESTAMP WITH TIME ZONE,
    stats JSONB DEFAULT '{}',
    created_at TIMESTAMP WITH TIME ZONE DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP WITH TIME ZONE DEFAULT CURRENT_TIMESTAMP,
    deleted_at TIMESTAMP WITH TIME ZONE,
    CONSTRAINT check_status CHECK (status IN ('pending', 'running', 'expired', 'disconnected', 'error')),
    CONSTRAINT check_port_range CHECK (assigned_port BETWEEN 3001 AND 65535),
    CONSTRAINT check_access_token_hash_hex CHECK (access_token_hash ~ '^[0-9a-f]{64}$')
);

-- One row per port of each node's pool.
CREATE TABLE port_allocations (
    node_id UUID NOT NULL REFERENCES nodes(id) ON DELETE CASCADE,
    port INTEGER NOT NULL CHECK (port BETWEEN 3001 AND 65535),
    -- Deferred: a create claims the port, then inserts the instance, in one transaction.
    mcp_instance_id UUID REFERENCES mcp_instances(id) ON DELETE SET NULL DEFERRABLE INITIALLY DEFERRED,
    allocated_at TIMESTAMP WITH TIME ZONE DEFAULT CURRENT_TIMESTAMP,
    released_at TIMESTAMP WITH TIME ZONE,
    is_available BOOLEAN DEFAULT false,
    last_health_check TIMESTAMP WITH TIME ZONE,
    PRIMARY KEY (node_id, port)
);

CREATE TABLE system_settings (
    key VARCHAR(100) PRIMARY KEY,
    value JSONB NOT NULL,
    description TEXT,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP WITH TIME ZONE DEFAULT CURRENT_TIMESTAMP
);

-- Partitioned by month (see 003); the primary key must hold the partition key.
CREATE TABLE mcp_logs (
    id UUID NOT NULL DEFAULT gen_random_uuid(),
    mcp_instance_id UUID NOT NULL REFERENCES mcp_instances(id) ON DELETE CASCADE,
    timestamp TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT CURRENT_TIMESTAMP,
    level VARCHAR(10) NOT NULL DEFAULT 'info',
    source VARCHAR(50) DEFAULT 'process',
    message TEXT NOT NULL,
    metadata JSONB DEFAULT '{}',
    created_at TIMESTAMP WITH TIME ZONE DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (id, timestamp),
    CONSTRAINT check_level CHECK (level IN ('debug', 'info', 'warn', 'error'))
) PARTITION BY RANGE (timestamp);

CREATE TABLE mcp_events (
    id UUID NOT NULL DEFAULT gen_random_uuid(),
    mcp_instance_id UUID NOT NULL REFERENCES mcp_instances(id) ON DELETE CASCADE,
    user_id UUID REFERENCES users(id),
    event_type VARCHAR(50) NOT NULL,
    event_data JSONB DEFAULT '{}',
    ip_address INET,
    user_agent TEXT,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (id, created_at)
) PARTITION BY RANGE (created_at);

CREATE TRIGGER touch_users BEFORE UPDATE ON users
    FOR EACH ROW EXECUTE FUNCTION minimcp_touch_updated_at();
CREATE TRIGGER touch_user_api_tokens BEFORE UPDATE ON user_api_tokens
    FOR EACH ROW EXECUTE FUNCTION minimcp_touch_updated_at();
CREATE TRIGGER touch_mcp_types BEFORE UPDATE ON mcp_types
    FOR EACH ROW EXECUTE FUNCTION minimcp_touch_updated_at();
CREATE TRIGGER touch_nodes BEFORE UPDATE ON nodes
    FOR EACH ROW EXECUTE FUNCTION minimcp_touch_updated_at();
CREATE TRIGGER touch_api_keys BEFORE UPDATE ON api_keys
    FOR EACH ROW EXECUTE FUNCTION minimcp_touch_updated_at();
CREATE TRIGGER touch_mcp_instances BEFORE UPDATE ON mcp_instances
    FOR EACH ROW EXECUTE FUNCTION minimcp_touch_updated_at();
CREATE TRIGGER touch_system_settings BEFORE UPDATE ON system_settings
    FOR EACH ROW EXECUTE FUNCTION minimcp_touch_updated_at();

-- Down Migration
DROP TABLE mcp_events;
DROP TABLE mcp_logs;
DROP TABLE system_settings;
DROP TABLE port_allocations;
DROP TABLE mcp_instances;
DROP TABLE api_keys;
DROP TABLE nodes;
DROP TABLE mcp_types;
DROP TABLE user_api_tokens;
DROP TABLE users;
DROP FUNCTION minimcp_touch_updated_at();
