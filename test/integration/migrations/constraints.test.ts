// The schema refuses rows the schema document rules out.
import { afterAll, beforeAll, describe, it } from '@jest/globals';
import { sql } from 'slonik';
import { violates } from '../../support/constraints.js';
import { createTestDatabase, type TestDatabase } from '../../support/database.js';
import { makeInstance, makeUser } from '../../support/fixtures.js';

describe('schema constraints', () => {
  let db: TestDatabase;
  let userId: string;
  let instanceId: string;

  beforeAll(async () => {
    db = await createTestDatabase();
    userId = (await makeUser(db.owner)).id;
    instanceId = (await makeInstance(db.owner, { userId })).id;
  });
  afterAll(() => db.drop());

  it('rejects an instance status outside the set', async () => {
    await violates(
      db.owner.query(
        sql.unsafe`UPDATE mcp_instances SET status = 'sleeping' WHERE id = ${instanceId}`,
      ),
      /check_status/,
    );
  });

  it('rejects a port outside 3001-65535', async () => {
    await violates(
      db.owner.query(
        sql.unsafe`UPDATE mcp_instances SET assigned_port = 80 WHERE id = ${instanceId}`,
      ),
      /check_port_range/,
    );
    await violates(
      db.owner.query(
        sql.unsafe`INSERT INTO port_allocations (node_id, port) SELECT id, 70000 FROM nodes WHERE name = 'local'`,
      ),
      /check/,
    );
  });

  it('rejects a second key for the same user and type', async () => {
    const insertKey = sql.unsafe`
      INSERT INTO api_keys (user_id, mcp_type_id, encrypted_key, encryption_iv, auth_tag, wrapped_data_key, key_provider, master_key_id)
      SELECT ${userId}, id, 'c2VjcmV0', '000000000000000000000000', '00000000000000000000000000000000', 'd3JhcHBlZA==', 'local', 'local:test'
      FROM mcp_types WHERE name = 'github'`;
    await db.owner.query(insertKey);
    await violates(db.owner.query(insertKey), /api_keys_user_id_mcp_type_id_key/);
  });

  it('rejects a log level outside the set', async () => {
    await violates(
      db.owner.query(
        sql.unsafe`INSERT INTO mcp_logs (mcp_instance_id, level, message) VALUES (${instanceId}, 'fatal', 'x')`,
      ),
      /check_level/,
    );
  });

  it('rejects a node status outside active/draining/down, and an inverted port range', async () => {
    await violates(
      db.owner.query(sql.unsafe`UPDATE nodes SET status = 'sleeping' WHERE name = 'local'`),
      /check_node_status/,
    );
    await violates(
      db.owner.query(
        sql.unsafe`UPDATE nodes SET port_range_start = 4000, port_range_end = 3000 WHERE name = 'local'`,
      ),
      /check_node_port_range/,
    );
  });

  it('rejects a token hash that is not a SHA-256 hex digest, and a duplicate one', async () => {
    await violates(
      db.owner.query(
        sql.unsafe`UPDATE mcp_instances SET access_token_hash = ${'z'.repeat(64)} WHERE id = ${instanceId}`,
      ),
      /check_access_token_hash_hex/,
    );
    const other = await makeInstance(db.owner, { userId });
    await violates(
      db.owner.query(
        sql.unsafe`UPDATE mcp_instances SET access_token_hash = ${other.access_token_hash} WHERE id = ${instanceId}`,
      ),
      /mcp_instances_access_token_hash_key/,
    );
  });

  it('rejects a second live instance on the same node and port, but not a finished one', async () => {
    const node = await db.owner.oneFirst(sql.unsafe`SELECT id FROM nodes WHERE name = 'local'`);
    const a = await makeInstance(db.owner, { userId, nodeId: String(node) });
    const b = await makeInstance(db.owner, { userId, nodeId: String(node) });
    await db.owner.query(
      sql.unsafe`UPDATE mcp_instances SET assigned_port = 3050 WHERE id = ${a.id}`,
    );
    await violates(
      db.owner.query(sql.unsafe`UPDATE mcp_instances SET assigned_port = 3050 WHERE id = ${b.id}`),
      /idx_mcp_instances_node_port_live/,
    );
    await db.owner.query(
      sql.unsafe`UPDATE mcp_instances SET status = 'expired' WHERE id = ${a.id}`,
    );
    await db.owner.query(
      sql.unsafe`UPDATE mcp_instances SET assigned_port = 3050 WHERE id = ${b.id}`,
    );
  });

  it('rejects an MCP type with neither a script nor a command', async () => {
    await violates(
      db.owner.query(
        sql.unsafe`INSERT INTO mcp_types (name, display_name) VALUES ('empty', 'Empty')`,
      ),
      /check_type_runnable/,
    );
  });
});
