// Admin command: re-wraps every stored API key under a new master key (KMS key
// or local master key) after decrypting it with the old one.
//
// Usage (from the repository root, after `npm run -s build`):
//
//   DATABASE_URL=postgres://...                 the database (owner or API role)
//   OLD_KMS_KEY_ID=... | OLD_MINIMCP_MASTER_KEY=... | OLD_MINIMCP_MASTER_KEY_FILE=...
//                                               the old provider (default: local key file .minimcp/master.key)
//   KMS_KEY_ID=... | MINIMCP_MASTER_KEY=... | MINIMCP_MASTER_KEY_FILE=...
//                                               the new provider, as the services will be configured
//   AWS_REGION, AWS_ENDPOINT_URL_KMS            shared by both when KMS is involved
//   node dist/infra/cli/rewrap-keys.js [--batch-size 100]
//
// Example, local stack to a new local master key (created 0600 on first use):
//   OLD_MINIMCP_MASTER_KEY_FILE=.minimcp/master.key MINIMCP_MASTER_KEY_FILE=.minimcp/master-2.key \
//   DATABASE_URL=... node dist/infra/cli/rewrap-keys.js
//
// Stop the API and agents first unless both sides are KMS keys the services'
// role may use (a KMS provider decrypts envelopes under any such key); then
// point the services at the new key. Each batch is one transaction; keys
// already under the new key are skipped, so an interrupted run can simply be
// repeated. Prints one JSON line per batch and a summary; exits 1 when a key
// could not be decrypted (listed by id, left untouched), 2 on a usage error.
import { parseArgs } from 'node:util';
import { createKeyProviderFromEnv } from '../../core/crypto/provider-from-env.js';
import { rewrapApiKeys } from '../../lambdas/control/key-rewrap.js';
import { createDatabasePool } from '../../core/db/pool.js';

function usage(message: string): never {
  process.stderr.write(`rewrap-keys: ${message}\n(see the header of infra/cli/rewrap-keys.ts)\n`);
  process.exit(2);
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: { 'batch-size': { type: 'string', default: '100' } },
    strict: true,
  });
  const batchSize = Number(values['batch-size']);
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    usage(`--batch-size must be a positive integer, got ${values['batch-size']}`);
  }
  const env = process.env;
  if (!env.DATABASE_URL) usage('DATABASE_URL is not set');

  const from = await createKeyProviderFromEnv({
    KMS_KEY_ID: env.OLD_KMS_KEY_ID,
    MINIMCP_MASTER_KEY: env.OLD_MINIMCP_MASTER_KEY,
    MINIMCP_MASTER_KEY_FILE: env.OLD_MINIMCP_MASTER_KEY_FILE,
    AWS_REGION: env.AWS_REGION,
    AWS_ENDPOINT_URL_KMS: env.AWS_ENDPOINT_URL_KMS,
  });
  const to = await createKeyProviderFromEnv(env);
  if (from.name === to.name && from.masterKeyId === to.masterKeyId) {
    usage(`the old and the new master key are the same (${to.name} ${to.masterKeyId})`);
  }

  const pool = await createDatabasePool(env.DATABASE_URL);
  try {
    const log = (line: Record<string, unknown>) =>
      process.stdout.write(`${JSON.stringify(line)}\n`);
    log({ msg: 'rewrap started', from: from.masterKeyId, to: to.masterKeyId, batchSize });
    const result = await rewrapApiKeys({
      pool,
      from,
      to,
      batchSize,
      onBatch: (progress) =>
        log({
          msg: 'batch committed',
          rewrapped: progress.rewrapped,
          failed: progress.failed.length,
        }),
    });
    log({ msg: 'rewrap finished', rewrapped: result.rewrapped, failed: result.failed });
    return result.failed.length === 0 ? 0 : 1;
  } finally {
    await pool.end();
  }
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    // Messages of our errors carry ids and names only, never key material.
    process.stderr.write(
      `rewrap-keys failed: ${error instanceof Error ? error.message : String(error)}\n`,
    );
    process.exitCode = 1;
  },
);
