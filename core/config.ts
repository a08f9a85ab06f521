// Configuration: environment variables parsed once by zod. One schema object
// per part (core, api; the agent adds its own) so each entry point parses only
// what it reads. With MINIMCP_SSM_PREFIX set (on AWS), parameters under that
// SSM path are merged in first; an environment variable wins over a parameter.
import { z } from 'zod';
import { LOG_LEVELS } from './logger.js';

/** Settings whose values are never echoed in an error message. */
export const SECRET_SETTINGS: ReadonlySet<string> = new Set([
  'DATABASE_URL',
  'MINIMCP_ADMIN_TOKEN',
  'MINIMCP_MASTER_KEY',
]);

const port = z.coerce.number().int().min(0).max(65535);
const positiveInt = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

/** Settings every part reads. `.describe()` is the README's configuration table. */
export const coreConfig = z.object({
  DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// connection URL')
    .describe('PostgreSQL connection URL (postgres://user:password@host:port/database).'),
  LOG_LEVEL: z.enum(LOG_LEVELS).default('info').describe('Log level of the JSON logs.'),
  MINIMCP_DATA_DIR: z
    .string()
    .min(1)
    .default('.minimcp')
    .describe('Folder for local state: the embedded database, the local master key.'),
  MINIMCP_SSM_PREFIX: z
    .string()
    .regex(/^\/[\w.\-/]*$/, 'must be an SSM path starting with /')
    .optional()
    .describe(
      'On AWS: SSM Parameter Store path whose parameters (named like these variables) are loaded at first use.',
    ),
  AWS_REGION: z.string().optional().describe('AWS region for KMS and SSM (set by Lambda).'),
  AWS_ENDPOINT_URL_SSM: z
    .url()
    .optional()
    .describe('Alternative SSM endpoint (LocalStack, moto); the AWS SDK reads it too.'),
  KMS_KEY_ID: z
    .string()
    .optional()
    .describe('AWS KMS key (id, ARN or alias) for API-key envelopes; selects the KMS provider.'),
  AWS_ENDPOINT_URL_KMS: z.url().optional().describe('Alternative KMS endpoint (LocalStack, moto).'),
  MINIMCP_MASTER_KEY: z
    .string()
    .optional()
    .describe('Local provider: the master key as base64 (32 bytes), instead of a key file.'),
  MINIMCP_MASTER_KEY_FILE: z
    .string()
    .optional()
    .describe('Local provider: master key file, created with mode 0600 on first start.'),
  MINIMCP_DB_POOL_SIZE: positiveInt(1, 100)
    .default(10)
    .describe('Database connections per process (keep it small on Lambda).'),
});

/** Settings of the HTTP API (lambdas/). */
export const apiConfig = z.object({
  MINIMCP_API_HOST: z
    .string()
    .min(1)
    .default('127.0.0.1')
    .describe('Interface the local API server listens on.'),
  MINIMCP_API_PORT: port.default(8080).describe('Port of the local API server (`npm run api`).'),
  MINIMCP_ADMIN_TOKEN: z
    .string()
    .min(24, 'must be at least 24 characters')
    .optional()
    .describe('Bootstrap admin bearer token (no user behind it); unset disables it.'),
  MINIMCP_MAX_BODY_BYTES: positiveInt(1024, 10 * 1024 * 1024)
    .default(64 * 1024)
    .describe('Largest request body accepted; larger bodies get 413.'),
  MINIMCP_PUBLIC_API_URL: z
    .url()
    .optional()
    .describe('Public base URL of the API, advertised in the OpenAPI document.'),
  MINIMCP_AUTH_RATE_BURST: positiveInt(1, 1000)
    .default(5)
    .describe('POST /v1/auth/token: attempts per email and client IP in a burst.'),
  MINIMCP_AUTH_RATE_REFILL_SECONDS: positiveInt(1, 3600)
    .default(12)
    .describe('POST /v1/auth/token: seconds to earn back one attempt.'),
});

export const ApiConfigSchema = coreConfig.extend(apiConfig.shape);
export type ApiConfig = z.infer<typeof ApiConfigSchema>;

export type Env = Record<string, string | undefined>;

export class ConfigError extends Error {
  constructor(
    message: string,
    readonly issues: string[],
  ) {
    super(message);
    this.name = 'ConfigError';
  }
}

/** Drops unset and empty variables: `FOO=` in a .env file means "not set". */
function presentOnly(env: Env): Record<string, string> {
  return Object.fromEntries(
    Object.entries(env).filter((entry): entry is [string, string] => Boolean(entry[1])),
  );
}

/** Parses the settings a schema names; the message lists every bad one, secrets unquoted. */
export function parseConfig<S extends z.ZodObject>(schema: S, env: Env): z.infer<S> {
  const input = presentOnly(env);
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const issues = result.error.issues.map((issue) => {
    const name = String(issue.path[0] ?? '');
    const value = input[name];
    const shown =
      value === undefined
        ? 'not set'
        : SECRET_SETTINGS.has(name)
          ? 'value hidden'
          : `got ${JSON.stringify(value.slice(0, 80))}`;
    return `${name}: ${issue.message} (${shown})`;
  });
  return (() => {
    throw new ConfigError(`invalid configuration: ${issues.join('; ')}`, issues);
  })();
}

export interface LoadConfigOptions {
  /** Reads the parameters under an SSM path; defaults to SSM GetParametersByPath. */
  loadParameters?: (path: string, env: Env) => Promise<Record<string, string>>;
}

/** Parameter names are taken from their last path segment: /minimcp/prod/DATABASE_URL → DATABASE_URL. */
function byShortName(parameters: Record<string, string>): Env {
  return Object.fromEntries(
    Object.entries(parameters).map(([name, value]) => [name.slice(name.lastIndexOf('/') + 1), value]),
  );
}

async function loadFromSsm(path: string, env: Env): Promise<Record<string, string>> {
  // Loaded only when a prefix is set: the local stack never pays for the SDK.
  const [{ SSMClient }, { loadParametersByPath }] = await Promise.all([
    import('@aws-sdk/client-ssm'),
    import('./ssm-parameters.js'),
  ]);
  const ssm = new SSMClient(env.AWS_REGION ? { region: env.AWS_REGION } : {});
  try {
    return await loadParametersByPath({ ssm, path });
  } finally {
    ssm.destroy();
  }
}

/** The environment merged with SSM parameters when MINIMCP_SSM_PREFIX is set, then parsed. */
export async function loadConfig<S extends z.ZodObject>(
  schema: S,
  env: Env,
  options: LoadConfigOptions = {},
): Promise<z.infer<S>> {
  const prefix = env.MINIMCP_SSM_PREFIX;
  if (!prefix) return parseConfig(schema, env);
  const load = options.loadParameters ?? loadFromSsm;
  let parameters: Record<string, string>;
  try {
    parameters = await load(prefix, env);
  } catch (error) {
    throw new ConfigError(`could not load SSM parameters under ${prefix}`, [String(error)], {
      cause: error,
    } as never);
  }
  return parseConfig(schema, { ...byShortName(parameters), ...presentOnly(env) });
}
