// Re-wrapping stored API keys under a new master key, through the API role in
// the system scope: batches, a broken key reported and left alone, local → KMS,
// and the admin command itself.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { CreateKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import { sql } from 'slonik';
import { ApiKeyRow, upsertApiKey, envelopeFromRow } from '../../../../core/db/api-keys.js';
import { getTypeByName } from '../../../support/queries.js';
import { asUser } from '../../../../lambdas/control/db/user-context.js';
import {
  createEnvelopeCipher,
  keyHint,
  type KeyProvider,
} from '../../../../core/crypto/envelope.js';
import { createKmsKeyProvider } from '../../../../core/crypto/kms-provider.js';
import { createLocalKeyProvider } from '../../../../core/crypto/local-provider.js';
import { rewrapApiKeys } from '../../../../lambdas/control/key-rewrap.js';
import { DecryptionError } from '../../../../core/errors.js';
import { createTestDatabase, type TestDatabase } from '../../../support/database.js';
import { makeUser } from '../../../support/fixtures.js';
import { MOTO_CLIENT_CONFIG, startMoto, type MotoServer } from '../../../support/moto.js';

const TYPES = ['github', 'gmail', 'figma'] as const;
const REPO_ROOT = path.resolve(import.meta.dirname, '../../../..');

interface StoredKey {
  id: string;
  userId: string;
  mcpType: string;
  plaintext: string;
}

const envelopeOf = envelopeFromRow;

async function localProvider(): Promise<KeyProvider> {
  return createLocalKeyProvider({ masterKeyBase64: randomBytes(32).toString('base64') });
}

describe('rewrapApiKeys', () => {
  let db: TestDatabase;
  let users: string[];

  beforeAll(async () => {
    db = await createTestDatabase();
    users = [(await makeUser(db.owner)).id, (await makeUser(db.owner)).id];
  });
  afterAll(() => db.drop());

  /** One key per user and type (6), stored through the API role as the user. */
  async function storeKeys(provider: KeyProvider): Promise<StoredKey[]> {
    await db.owner.query(sql.unsafe`DELETE FROM api_keys`);
    const cipher = createEnvelopeCipher({ provider });
    const stored: StoredKey[] = [];
    for (const userId of users) {
      for (const mcpType of TYPES) {
        const plaintext = `key-${mcpType}-${randomBytes(12).toString('hex')}`;
        const type = await getTypeByName(db.owner, mcpType);
        const envelope = await cipher.encrypt(plaintext, { userId, mcpType });
        const row = await asUser(db.app, userId, (tx) =>
          upsertApiKey(tx, {
            userId,
            mcpTypeId: type.id,
            envelope,
            hint: keyHint(plaintext),
            expiresAt: null,
          }),
        );
        stored.push({ id: row.id, userId, mcpType, plaintext });
      }
    }
    return stored;
  }

  async function rowsById(): Promise<Map<string, ApiKeyRow>> {
    const rows = await db.owner.any(sql.type(ApiKeyRow)`
      SELECT id, user_id, mcp_type_id, encrypted_key, key_hint, encryption_iv, auth_tag, wrapped_data_key,
             key_provider, master_key_id, encryption_version, is_active, created_at, updated_at, expires_at
      FROM api_keys`);
    return new Map(rows.map((row) => [row.id, row]));
  }

  async function expectAllUnder(provider: KeyProvider, keys: StoredKey[]): Promise<void> {
    const rows = await rowsById();
    const cipher = createEnvelopeCipher({ provider });
    for (const key of keys) {
      const row = rows.get(key.id)!;
      expect(row.key_provider).toBe(provider.name);
      expect(row.master_key_id).toBe(provider.masterKeyId);
      await expect(
        cipher.decrypt(envelopeOf(row), { userId: key.userId, mcpType: key.mcpType }),
      ).resolves.toBe(key.plaintext);
    }
  }

  it('moves every key to the new master key in batches, and a second run finds nothing to do', async () => {
    const from = await localProvider();
    const to = await localProvider();
    const keys = await storeKeys(from);
    const batches: number[] = [];

    const result = await rewrapApiKeys({
      pool: db.app,
      from,
      to,
      batchSize: 4,
      onBatch: (progress) => batches.push(progress.rewrapped),
    });

    expect(result).toEqual({ rewrapped: 6, failed: [] });
    expect(batches).toEqual([4, 6]);
    await expectAllUnder(to, keys);
    await expect(rewrapApiKeys({ pool: db.app, from, to, batchSize: 4 })).resolves.toEqual({
      rewrapped: 0,
      failed: [],
    });
  });

  it('reports a key the old provider cannot decrypt, leaves it untouched, and moves the others', async () => {
    const from = await localProvider();
    const to = await localProvider();
    const keys = await storeKeys(from);
    const broken = keys[2]!;
    await db.owner.query(
      sql.unsafe`UPDATE api_keys SET auth_tag = ${'0'.repeat(32)} WHERE id = ${broken.id}`,
    );
    const before = (await rowsById()).get(broken.id)!;

    const result = await rewrapApiKeys({ pool: db.app, from, to, batchSize: 2 });

    expect(result.rewrapped).toBe(5);
    expect(result.failed).toHaveLength(1);
    expect(result.failed[0]!.keyId).toBe(broken.id);
    expect(result.failed[0]!.reason).toContain('authentication failed');
    expect(result.failed[0]!.reason).not.toContain(broken.plaintext);
    const after = (await rowsById()).get(broken.id)!;
    expect(envelopeOf(after)).toEqual(envelopeOf(before));
    await expectAllUnder(
      to,
      keys.filter((key) => key !== broken),
    );
  });

  it('writes nothing of a batch when the new key cannot decrypt what it wrapped', async () => {
    const from = await localProvider();
    const inner = await localProvider();
    const keys = await storeKeys(from);
    const before = await rowsById();
    // Wraps fine, but cannot unwrap (like a KMS key without kms:Decrypt for this role).
    const writeOnly: KeyProvider = {
      name: inner.name,
      masterKeyId: inner.masterKeyId,
      generateDataKey: (ctx) => inner.generateDataKey(ctx),
      decryptDataKey: async () => {
        throw new DecryptionError('access denied');
      },
    };

    await expect(
      rewrapApiKeys({ pool: db.app, from, to: writeOnly, batchSize: 10 }),
    ).rejects.toBeInstanceOf(DecryptionError);

    const after = await rowsById();
    for (const key of keys)
      expect(envelopeOf(after.get(key.id)!)).toEqual(envelopeOf(before.get(key.id)!));
  });

  it('cannot read any key without the system scope: the API role is bound by row-level security', async () => {
    const from = await localProvider();
    await storeKeys(from);
    const visible = await db.app.oneFirst(sql.unsafe`SELECT count(*)::int FROM api_keys`);
    expect(visible).toBe(0);
  });

  describe('from the local provider to KMS (moto)', () => {
    let moto: MotoServer;
    let kms: KMSClient;

    beforeAll(async () => {
      moto = await startMoto();
      kms = new KMSClient({ ...MOTO_CLIENT_CONFIG, endpoint: moto.endpoint });
    });
    afterAll(async () => {
      try {
        kms?.destroy();
      } finally {
        await moto?.stop();
      }
    });

    it('re-wraps every key under the KMS key with its user/type encryption context', async () => {
      const from = await localProvider();
      const created = await kms.send(new CreateKeyCommand({}));
      const to = createKmsKeyProvider({ kms, keyId: created.KeyMetadata!.Arn! });
      const keys = await storeKeys(from);

      await expect(rewrapApiKeys({ pool: db.app, from, to })).resolves.toEqual({
        rewrapped: 6,
        failed: [],
      });

      await expectAllUnder(to, keys);
      // The context went to KMS: a row decrypted as another user's is refused by KMS.
      const row = (await rowsById()).get(keys[0]!.id)!;
      await expect(
        createEnvelopeCipher({ provider: to }).decrypt(envelopeOf(row), {
          userId: users[1]!,
          mcpType: keys[0]!.mcpType,
        }),
      ).rejects.toBeInstanceOf(DecryptionError);
    });
  });

  describe('the admin command (infra/cli/rewrap-keys.ts)', () => {
    let dir: string;
    beforeEach(async () => {
      dir = await mkdtemp(path.join(os.tmpdir(), 'minimcp-rewrap-cli-'));
    });
    afterEach(() => rm(dir, { recursive: true, force: true }));

    function runCli(
      env: Record<string, string>,
    ): Promise<{ code: number | null; stdout: string; stderr: string }> {
      return new Promise((resolve, reject) => {
        const child = spawn(
          process.execPath,
          [path.join(REPO_ROOT, 'dist/infra/cli/rewrap-keys.js'), '--batch-size', '4'],
          {
            cwd: REPO_ROOT,
            env: {
              PATH: process.env.PATH ?? '',
              AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
              ...env,
            },
            stdio: ['ignore', 'pipe', 'pipe'],
          },
        );
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
        child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
        child.once('error', reject);
        child.once('close', (code) => resolve({ code, stdout, stderr }));
      });
    }

    it('re-wraps from the old key file to a new one, created 0600, and prints a summary', async () => {
      const oldFile = path.join(dir, 'master.key');
      const newFile = path.join(dir, 'master-2.key');
      const from = await createLocalKeyProvider({ keyFile: oldFile });
      const keys = await storeKeys(from);

      const run = await runCli({
        DATABASE_URL: db.appUrl,
        OLD_MINIMCP_MASTER_KEY_FILE: oldFile,
        MINIMCP_MASTER_KEY_FILE: newFile,
      });

      expect(run.stderr).toBe('');
      expect(run.code).toBe(0);
      const lines = run.stdout
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as Record<string, unknown>);
      expect(lines.at(-1)).toEqual({ msg: 'rewrap finished', rewrapped: 6, failed: [] });
      for (const key of keys) expect(run.stdout).not.toContain(key.plaintext);
      expect((await stat(newFile)).mode & 0o777).toBe(0o600);
      await expectAllUnder(await createLocalKeyProvider({ keyFile: newFile }), keys);
    });

    it('exits 1 and lists the key ids it could not decrypt', async () => {
      const oldFile = path.join(dir, 'master.key');
      const keys = await storeKeys(await localProvider()); // under a key the command is not given

      const run = await runCli({
        DATABASE_URL: db.appUrl,
        OLD_MINIMCP_MASTER_KEY_FILE: oldFile,
        MINIMCP_MASTER_KEY: randomBytes(32).toString('base64'),
      });

      expect(run.code).toBe(1);
      const summary = JSON.parse(run.stdout.trim().split('\n').at(-1)!) as {
        failed: { keyId: string }[];
      };
      expect(summary.failed.map((f) => f.keyId).sort()).toEqual(keys.map((k) => k.id).sort());
    });

    it('exits 2 when the old and the new master key are the same', async () => {
      const key = randomBytes(32).toString('base64');
      const run = await runCli({
        DATABASE_URL: db.appUrl,
        OLD_MINIMCP_MASTER_KEY: key,
        MINIMCP_MASTER_KEY: key,
      });
      expect(run.code).toBe(2);
      expect(run.stderr).toContain('the same');
      expect(run.stderr).not.toContain(key);
    });
  });
});
