// Envelope tamper, end to end: a key stored through the API, then its row in
// PostgreSQL altered the way someone with write access to the database could —
// each stored part of the envelope in turn, and the whole envelope moved to
// another user's row and to another type's row — and an instance created from
// it. Every attempt is refused where the key is opened (the agent, with the
// user and type as the encryption context): the API answers 502 with the
// agent's KEY_UNDECRYPTABLE, the instance is left in `error` with its event,
// no child is started, and neither the key nor the refusal's answer shows any
// part of it. The untouched envelope works before and after, so each refusal
// is the tamper's doing. (The cipher's own cases: test/unit/core/crypto/envelope.test.ts.)
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { sql } from 'slonik';
import { z } from 'zod';
import { PROBLEM_TYPE_BASE } from '../../lambdas/problem.js';
import type { ApiResponse } from '../support/api.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { startFaultStack, type FaultStack, type FaultUser } from '../support/fault-stack.js';

/** Keys in github's accepted form (a classic token: 40 hex digits), one per user. */
const ALICE_KEY = 'a11ce0'.repeat(7).slice(0, 40);
const BOB_KEY = 'b0b0b0'.repeat(7).slice(0, 40);
const ALICE_FIGMA_KEY = 'figd_a11ce0a11ce0a11ce0';

const EnvelopeRow = z.object({
  id: z.string(),
  encrypted_key: z.string(),
  encryption_iv: z.string(),
  auth_tag: z.string(),
  wrapped_data_key: z.string(),
  key_provider: z.string(),
  master_key_id: z.string(),
  encryption_version: z.number(),
});
type EnvelopeRow = z.infer<typeof EnvelopeRow>;
type EnvelopePart = Exclude<keyof EnvelopeRow, 'id'>;

/** The stored part with one bit of its first byte flipped, in the part's own encoding. */
function flipFirstBit(value: string, encoding: 'hex' | 'base64'): string {
  const bytes = Buffer.from(value, encoding);
  bytes[0] = bytes[0]! ^ 0x01;
  return bytes.toString(encoding);
}

/** Each stored part of the envelope, and a tampered value of it. */
const TAMPERS: { part: EnvelopePart; how: string; alter(row: EnvelopeRow): string | number }[] = [
  {
    part: 'encrypted_key',
    how: 'one bit of the ciphertext flipped',
    alter: (row) => flipFirstBit(row.encrypted_key, 'base64'),
  },
  {
    part: 'encryption_iv',
    how: 'one bit of the IV flipped',
    alter: (row) => flipFirstBit(row.encryption_iv, 'hex'),
  },
  {
    part: 'auth_tag',
    how: 'one bit of the GCM tag flipped',
    alter: (row) => flipFirstBit(row.auth_tag, 'hex'),
  },
  {
    part: 'wrapped_data_key',
    how: 'one bit of the wrapped data key flipped',
    alter: (row) => flipFirstBit(row.wrapped_data_key, 'base64'),
  },
  {
    part: 'key_provider',
    how: 'another provider named',
    alter: (row) => (row.key_provider === 'local' ? 'aws-kms' : 'local'),
  },
  {
    part: 'master_key_id',
    how: 'another master key named',
    alter: (row) => `${row.master_key_id}-other`,
  },
  {
    part: 'encryption_version',
    how: 'an unknown format version',
    alter: (row) => row.encryption_version + 1,
  },
];

const InstanceBody = z.object({ id: z.string(), status: z.string() });
const Problem = z.object({
  type: z.string(),
  status: z.number(),
  detail: z.string(),
  instance_id: z.string().optional(),
});

describe('envelope tamper, through the API and the agent', () => {
  let db: TestDatabase;
  let stack: FaultStack;
  let alice: FaultUser;
  let bob: FaultUser;
  /** The local provider's master key id, which every stored envelope names. */
  let masterKeyId: string;

  const storeKey = async (user: FaultUser, type: string, key: string) => {
    const response = await stack.request('PUT', `/v1/keys/${type}`, {
      token: user.token,
      json: { key },
    });
    expect(response.status).toBe(200);
  };

  const envelopeOf = (userId: string, type: string) =>
    db.owner.one(sql.type(EnvelopeRow)`
      SELECT k.id, k.encrypted_key, k.encryption_iv, k.auth_tag, k.wrapped_data_key,
             k.key_provider, k.master_key_id, k.encryption_version
      FROM api_keys k JOIN mcp_types t ON t.id = k.mcp_type_id
      WHERE k.user_id = ${userId} AND t.name = ${type}`);

  /** Writes `envelope`'s stored parts into the row `rowId`, as the database's owner would. */
  const writeEnvelope = (rowId: string, envelope: EnvelopeRow) =>
    db.owner.query(sql.unsafe`
      UPDATE api_keys SET
        encrypted_key = ${envelope.encrypted_key},
        encryption_iv = ${envelope.encryption_iv},
        auth_tag = ${envelope.auth_tag},
        wrapped_data_key = ${envelope.wrapped_data_key},
        key_provider = ${envelope.key_provider},
        master_key_id = ${envelope.master_key_id},
        encryption_version = ${envelope.encryption_version}
      WHERE id = ${rowId}`);

  const create = (user: FaultUser, type: string) =>
    stack.request('POST', '/v1/instances', { token: user.token, json: { type } });

  const remove = async (user: FaultUser, id: string) => {
    const response = await stack.request('DELETE', `/v1/instances/${id}`, { token: user.token });
    expect(response.status).toBe(204);
  };

  /** A create that runs (the control): 201, then deleted again. */
  const expectRuns = async (user: FaultUser, type: string) => {
    const response = await create(user, type);
    if (response.status !== 201)
      throw new Error(`expected 201, got ${response.status}: ${response.text}`);
    await remove(user, InstanceBody.parse(response.body).id);
  };

  /**
   * A create the agent refuses because the key will not open: 502 with its
   * reason, the row in `error` without a process, the `error` event with
   * KEY_UNDECRYPTABLE, and nothing of either key in the answer.
   */
  const expectRefused = async (response: ApiResponse, user: FaultUser, type: string) => {
    if (response.status !== 502)
      throw new Error(`expected 502, got ${response.status}: ${response.text}`);
    expect(response.headers.get('content-type')).toContain('application/problem+json');
    const problem = Problem.parse(response.body);
    expect(problem.type).toBe(`${PROBLEM_TYPE_BASE}instance-start-failed`);
    expect(problem.detail).toMatch(/decrypt/i);
    // What to do, and no provider internals (those are in the agent's log).
    expect(problem.detail).toContain(`PUT /v1/keys/${type}`);
    expect(response.text).not.toContain(masterKeyId);
    for (const key of [ALICE_KEY, BOB_KEY, ALICE_FIGMA_KEY])
      expect(response.text).not.toContain(key);

    const instance = await db.owner.one(sql.type(
      z.object({
        id: z.string(),
        status: z.string(),
        process_id: z.number().nullable(),
        error_message: z.string().nullable(),
      }),
    )`
      SELECT id, status, process_id, error_message FROM mcp_instances
      WHERE user_id = ${user.id} ORDER BY created_at DESC LIMIT 1`);
    expect(instance).toMatchObject({ status: 'error', process_id: null });
    expect(instance.error_message).toMatch(/decrypt/i);
    expect(instance.error_message).not.toContain(masterKeyId);
    const events = await db.owner.any(sql.type(
      z.object({ event_type: z.string(), code: z.string().nullable() }),
    )`
      SELECT event_type, event_data ->> 'code' AS code FROM mcp_events
      WHERE mcp_instance_id = ${instance.id} ORDER BY created_at`);
    expect(events).toContainEqual({ event_type: 'error', code: 'KEY_UNDECRYPTABLE' });
    expect(events.map((e) => e.event_type)).not.toContain('started');
    await remove(user, instance.id);
  };

  beforeAll(async () => {
    db = await createTestDatabase();
    stack = await startFaultStack({
      appUrl: db.appUrl,
      agentUrl: db.agentUrl,
      // A child must not reach the real service: nothing listens here.
      agentEnv: {
        MINIMCP_UPSTREAM_OVERRIDES: JSON.stringify({
          github: 'http://127.0.0.1:9',
          figma: 'http://127.0.0.1:9',
        }),
        MINIMCP_RECONCILE_SECONDS: '60',
      },
    });
    alice = await stack.createUser();
    bob = await stack.createUser();
    await storeKey(alice, 'github', ALICE_KEY);
    await storeKey(alice, 'figma', ALICE_FIGMA_KEY);
    await storeKey(bob, 'github', BOB_KEY);
    masterKeyId = (await envelopeOf(alice.id, 'github')).master_key_id;
  });

  afterAll(async () => {
    await stack?.close();
    await db?.drop();
  });

  it('runs from the envelopes as stored (the control)', async () => {
    await expectRuns(alice, 'github');
    await expectRuns(bob, 'github');
  });

  it.each(TAMPERS)('refuses the key with $part altered ($how)', async ({ part, alter }) => {
    const stored = await envelopeOf(alice.id, 'github');
    await writeEnvelope(stored.id, { ...stored, [part]: alter(stored) });
    try {
      await expectRefused(await create(alice, 'github'), alice, 'github');
    } finally {
      await writeEnvelope(stored.id, stored);
    }
    await expectRuns(alice, 'github');
  });

  it("refuses alice's envelope moved into bob's row", async () => {
    const bobs = await envelopeOf(bob.id, 'github');
    await writeEnvelope(bobs.id, { ...(await envelopeOf(alice.id, 'github')), id: bobs.id });
    try {
      await expectRefused(await create(bob, 'github'), bob, 'github');
    } finally {
      await writeEnvelope(bobs.id, bobs);
    }
    await expectRuns(bob, 'github');
  });

  it('tells operators why in the agent log', () => {
    const reasons = stack.agentLogs.filter((line) =>
      line.includes('the stored key of this instance cannot be decrypted'),
    );
    // One per refused create so far: the seven tampers and the move to bob's row.
    expect(reasons).toHaveLength(TAMPERS.length + 1);
    expect(reasons.some((line) => line.includes(masterKeyId))).toBe(true);
  });

  it("refuses alice's github envelope moved into her own figma row", async () => {
    const figma = await envelopeOf(alice.id, 'figma');
    await writeEnvelope(figma.id, { ...(await envelopeOf(alice.id, 'github')), id: figma.id });
    try {
      await expectRefused(await create(alice, 'figma'), alice, 'figma');
    } finally {
      await writeEnvelope(figma.id, figma);
    }
    await expectRuns(alice, 'figma');
  });
});
