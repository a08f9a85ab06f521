-- Up Migration
-- Seed rows of the schema document (three MCP types, eight settings, the
-- 3001-3100 port pool), plus the keyless `demo` type. The port pool belongs to
-- the node named `local` (down until an agent registers under that name);
-- agents on other nodes create their own pool when they register.

INSERT INTO mcp_types (name, display_name, server_script, config_template) VALUES
('gmail', 'Gmail MCP', './mcp-servers/gmail-mcp-server.js', '{"api_version": "v1"}'),
('figma', 'Figma MCP', './mcp-servers/figma-mcp-server.js', '{"api_version": "v2"}'),
('github', 'GitHub MCP', './mcp-servers/github-mcp-server.js', '{"api_version": "v3"}');

UPDATE mcp_types SET
  description = 'Search, read, label, draft and send Gmail messages (Gmail API v1, OAuth 2.0 access token or refresh-token JSON).',
  required_scopes = '["https://www.googleapis.com/auth/gmail.modify", "https://www.googleapis.com/auth/gmail.compose"]'
WHERE name = 'gmail';
UPDATE mcp_types SET
  description = 'Read Figma files and nodes, render images, list and post comments, browse team projects, components and styles (Figma REST v1, personal access token).',
  required_scopes = '["file_content:read", "file_comments:write"]',
  key_pattern = '^figd_[A-Za-z0-9_-]{10,}$'
WHERE name = 'figma';
UPDATE mcp_types SET
  description = 'Repositories, issues, pull requests, code search, file contents and commits on GitHub (REST v3, personal access token).',
  required_scopes = '["repo", "read:user"]',
  key_pattern = '^(gh[pousr]_[A-Za-z0-9_]{20,255}|github_pat_[A-Za-z0-9_]{20,255}|[0-9a-f]{40})$'
WHERE name = 'github';

INSERT INTO mcp_types (name, display_name, description, server_script, requires_key, config_template) VALUES
('demo', 'Demo MCP', 'A keyless server of echo, time and arithmetic tools: try MiniMCP without a third-party account.',
 './mcp-servers/demo-mcp-server.js', false, '{}');

INSERT INTO system_settings (key, value, description) VALUES
('encryption.algorithm', '"aes-256-gcm"', 'Encryption algorithm for API keys'),
('mcp.default_duration_minutes', '60', 'Default MCP instance duration'),
('mcp.max_instances_per_user', '10', 'Maximum concurrent MCP instances per user'),
('cleanup.retention_days', '30', 'Days to retain logs and expired instances'),
('port.range_start', '3001', 'Starting port for MCP instances'),
('port.range_end', '3100', 'Ending port for MCP instances'),
('process.max_memory_mb', '512', 'Maximum memory per MCP process in MB'),
('process.max_cpu_percent', '50', 'Maximum CPU usage per MCP process');

INSERT INTO nodes (name, grpc_address, public_host, port_range_start, port_range_end, capacity, status)
VALUES ('local', '127.0.0.1:50051', '127.0.0.1', 3001, 3100, 100, 'down');

INSERT INTO port_allocations (node_id, port, is_available)
SELECT n.id, port_num, true
FROM nodes n, generate_series(3001, 3100) AS port_num
WHERE n.name = 'local';

-- Down Migration
DELETE FROM port_allocations WHERE node_id = (SELECT id FROM nodes WHERE name = 'local');
DELETE FROM nodes WHERE name = 'local';
DELETE FROM system_settings WHERE key IN (
  'encryption.algorithm', 'mcp.default_duration_minutes', 'mcp.max_instances_per_user',
  'cleanup.retention_days', 'port.range_start', 'port.range_end',
  'process.max_memory_mb', 'process.max_cpu_percent'
);
DELETE FROM mcp_types WHERE name IN ('gmail', 'figma', 'github', 'demo');
