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
  'MINIMCP_TLS_KEY',
]);

const port = z.coerce.number().int().min(0).max(65535);
const positiveInt = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

const jsonRecord = z.string().transform((value, ctx) => {
  try {
    return z.record(z.string(), z.url()).parse(JSON.parse(value));
  } catch {
    ctx.addIssue({ code: 'custom', message: 'must be a JSON object of type name to URL' });
    return z.NEVER;
  }
});

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
  MINIMCP_UPSTREAM_OVERRIDES: jsonRecord
    .optional()
    .describe(
      'JSON {"github": "https://ghe.example/api/v3"}: upstream base URL per type, set by the operator (MCP servers, key scope check).',
    ),
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
  MINIMCP_MAILER: z
    .enum(['outbox', 'ses', 'none'])
    .default('outbox')
    .describe(
      'Where account mail (verification links) goes: `outbox` writes DATA_DIR/outbox/*.json, `ses` sends through Amazon SES, `none` drops it (logged).',
    ),
  MINIMCP_MAIL_FROM: z
    .email()
    .optional()
    .describe(
      'Sender address of account mail; required with MINIMCP_MAILER=ses (an SES identity).',
    ),
  AWS_ENDPOINT_URL_SES: z
    .url()
    .optional()
    .describe('Alternative SES endpoint (moto); the AWS SDK reads it too.'),
  MINIMCP_VERIFY_URL: z
    .url()
    .optional()
    .describe(
      'Page the verification link opens, with ?token=… appended (it POSTs the token to /v1/auth/verify). Default: PUBLIC_API_URL/v1/auth/verify.',
    ),
  MINIMCP_VERIFY_TTL_MINUTES: positiveInt(5, 10_080)
    .default(1_440)
    .describe('How long an email verification link stays valid.'),
  MINIMCP_SCOPE_CHECK_TIMEOUT_MS: positiveInt(0, 10_000)
    .default(3_000)
    .describe('PUT /v1/keys/{type}: how long GitHub may take to report scopes (0: off).'),
});

/** How the control plane (API, maintenance job) reaches the agents. */
export const controlPlaneConfig = z.object({
  MINIMCP_NODE_STALE_SECONDS: positiveInt(5, 86_400)
    .default(30)
    .describe(
      'A node whose heartbeat is older than this gets no new instances and is marked down by maintenance.',
    ),
  MINIMCP_AGENT_STOP_WAIT_MS: positiveInt(100, 60_000)
    .default(5_000)
    .describe('How long a stop request waits for the agent.'),
  MINIMCP_START_WAIT_MS: positiveInt(100, 120_000)
    .default(10_000)
    .describe('How long POST /v1/instances waits for the agent before answering 202 pending.'),
  // PEM; on AWS the deploy step writes them as SecureString parameters. No
  // format check: a failed check would quote the value in the error.
  MINIMCP_TLS_CA: z.string().optional().describe('Control plane mTLS: the agents’ CA (PEM).'),
  MINIMCP_TLS_CERT: z.string().optional().describe('Control plane mTLS: its certificate (PEM).'),
  MINIMCP_TLS_KEY: z.string().optional().describe('Control plane mTLS: its private key (PEM).'),
  MINIMCP_TLS_DIR: z
    .string()
    .min(1)
    .optional()
    .describe(
      'Local stack: the certificate folder when MINIMCP_TLS_* are unset (default DATA_DIR/tls).',
    ),
});

export const ApiConfigSchema = coreConfig.extend(apiConfig.shape).extend(controlPlaneConfig.shape);
export type ApiConfig = z.infer<typeof ApiConfigSchema>;

export type Env = Record<string, string | undefined>;

export class ConfigError extends Error {
  constructor(
    message: string,
    readonly issues: string[],
    options?: { cause?: unknown },
  ) {
    super(message, options);
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
  throw new ConfigError(`invalid configuration: ${issues.join('; ')}`, issues);
}

export interface LoadConfigOptions {
  /** Reads the parameters under an SSM path; defaults to SSM GetParametersByPath. */
  loadParameters?: (path: string, env: Env) => Promise<Record<string, string>>;
}

/** Parameter names are taken from their last path segment: /minimcp/prod/DATABASE_URL → DATABASE_URL. */
function byShortName(parameters: Record<string, string>): Env {
  return Object.fromEntries(
    Object.entries(parameters).map(([name, value]) => [
      name.slice(name.lastIndexOf('/') + 1),
      value,
    ]),
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
    const reason = error instanceof Error ? error.name : 'unknown error';
    throw new ConfigError(`could not load SSM parameters under ${prefix}: ${reason}`, [reason], {
      cause: error,
    });
  }
  return parseConfig(schema, { ...byShortName(parameters), ...presentOnly(env) });
}

/** START-END of whole numbers from `min` to `max`, START ≤ END, as { start, end }. */
function numberRange(options: {
  pattern: RegExp;
  example: string;
  min: number;
  max: number;
  /** The message when an end is out of bounds or the range decreases. */
  outside: string;
}) {
  return z
    .string()
    .regex(options.pattern, `must look like ${options.example}`)
    .transform((value, ctx) => {
      const [start, end] = value.split('-').map(Number) as [number, number];
      if (start < options.min || end > options.max || end < start) {
        ctx.addIssue({ code: 'custom', message: options.outside });
        return z.NEVER;
      }
      return { start, end };
    });
}

const portRange = numberRange({
  pattern: /^\d{4,5}-\d{4,5}$/,
  example: '3001-3100',
  min: 1024,
  max: 65535,
  outside: 'must be an increasing range within 1024-65535',
});

/**
 * A range of OS user ids for MCP servers (MINIMCP_CHILD_UIDS): below 100000
 * live real accounts (ec2-user is 1000, with sudo) and nobody (65534). The CDK
 * settings check `agentChildUids` with it too (infra/stacks/settings.ts).
 */
export const childUidRange = numberRange({
  pattern: /^\d{6,10}-\d{6,10}$/,
  example: '200000-200999',
  min: 100_000,
  max: 4_294_967_294,
  outside: 'must be an increasing range of user ids from 100000 up (no real account)',
});

/** `demo:2,github:1` → { demo: 2, github: 1 }; `0` → {} (no pool). */
const warmPoolSizes = z.string().transform((value, ctx) => {
  const sizes: Record<string, number> = {};
  if (value.trim() === '0') return sizes;
  for (const part of value.split(',')) {
    const match = /^\s*([a-z0-9][a-z0-9_-]*)\s*:\s*(\d{1,2})\s*$/.exec(part);
    if (!match || Number(match[2]) > 16) {
      ctx.addIssue({
        code: 'custom',
        message:
          'must be TYPE:COUNT pairs separated by commas (count 0-16), e.g. demo:2,github:1, or 0',
      });
      return z.NEVER;
    }
    sizes[match[1]!] = Number(match[2]);
  }
  return sizes;
});

/** Where a listener binds: host (IPv6 in brackets) and port; `off`: no listener (null, which a default would not replace). */
const listenAddress = z.string().transform((value, ctx) => {
  if (value.trim() === 'off') return null;
  const match = /^(?:\[([0-9A-Fa-f:.]+)\]|([^\s:[\]]+)):(\d{1,5})$/.exec(value.trim());
  const port = Number(match?.[3]);
  if (!match || port > 65535) {
    ctx.addIssue({ code: 'custom', message: 'must be HOST:PORT (e.g. 127.0.0.1:9464) or off' });
    return z.NEVER;
  }
  return { host: match[1] ?? match[2]!, port };
});

/** Settings of the host agent (agent/). */
export const agentConfig = z.object({
  MINIMCP_NODE_NAME: z
    .string()
    .min(1)
    .max(100)
    .optional()
    .describe('Name the node registers under (default: the host name).'),
  MINIMCP_PUBLIC_HOST: z
    .string()
    .min(1)
    .default('127.0.0.1')
    .describe('Host clients use in access URLs (http://HOST:PORT/mcp).'),
  MINIMCP_BIND_HOST: z
    .string()
    .min(1)
    .default('127.0.0.1')
    .describe('Interface the instance ports listen on (0.0.0.0 on a server).'),
  MINIMCP_PORT_RANGE: portRange
    .optional()
    .describe(
      'Instance port pool of this node, START-END (default: the port.range_start/port.range_end settings, 3001-3100 as seeded).',
    ),
  MINIMCP_NODE_CAPACITY: positiveInt(0, 65535)
    .optional()
    .describe('Most instances this node runs (default: the pool size).'),
  MINIMCP_GRPC_LISTEN: z
    .string()
    .min(3)
    .default('127.0.0.1:50051')
    .describe('host:port of the agent gRPC server (mutual TLS).'),
  MINIMCP_GRPC_ADVERTISE: z
    .string()
    .min(3)
    .optional()
    .describe('host:port the control plane dials (default: the listen address).'),
  MINIMCP_TLS_DIR: z
    .string()
    .min(1)
    .optional()
    .describe(
      'Folder of ca.crt/agent.crt/agent.key/control-plane.*; generated locally on first start (default DATA_DIR/tls).',
    ),
  MINIMCP_TLS_CA_FILE: z
    .string()
    .min(1)
    .optional()
    .describe(
      'With the two below: PEM files of a deployment-issued TLS set (no local generation).',
    ),
  MINIMCP_TLS_CERT_FILE: z
    .string()
    .min(1)
    .optional()
    .describe('The agent server certificate (PEM).'),
  MINIMCP_TLS_KEY_FILE: z
    .string()
    .min(1)
    .optional()
    .describe('The agent server private key (PEM).'),
  MINIMCP_HEARTBEAT_SECONDS: positiveInt(1, 300)
    .default(5)
    .describe('Seconds between node heartbeats.'),
  MINIMCP_RECONCILE_SECONDS: positiveInt(1, 300)
    .default(3)
    .describe('Seconds between reconcile passes.'),
  MINIMCP_HANDSHAKE_TIMEOUT_MS: positiveInt(100, 600_000)
    .default(15_000)
    .describe('How long a child may take to answer MCP initialize.'),
  MINIMCP_STOP_GRACE_MS: positiveInt(0, 600_000)
    .default(5_000)
    .describe('SIGTERM to SIGKILL grace when stopping a child.'),
  MINIMCP_MAX_RESTARTS: positiveInt(0, 100)
    .default(3)
    .describe('Restarts of a crashing child before the instance goes to error.'),
  MINIMCP_START_READY_TIMEOUT_MS: positiveInt(100, 600_000)
    .default(15_000)
    .describe('Default wait of StartInstance for a ready child.'),
  MINIMCP_ALLOWED_ORIGINS: z
    .string()
    .transform((v) =>
      v
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean),
    )
    .optional()
    .describe(
      'Comma-separated browser origins allowed on instance ports (default: loopback origins).',
    ),
  MINIMCP_ACCESS_LOG: z
    .enum(['true', 'false'])
    .default('true')
    .transform((v) => v === 'true')
    .describe('Record an access line (source api) per MCP request.'),
  MINIMCP_SETTINGS_REFRESH_SECONDS: positiveInt(1, 3600)
    .default(30)
    .describe('Seconds between re-reads of system_settings (resource limits) by the agent.'),
  MINIMCP_USAGE_SECONDS: positiveInt(1, 300)
    .default(5)
    .describe('Seconds between usage samples written to mcp_instances.stats.'),
  MINIMCP_CHILD_UIDS: childUidRange
    .optional()
    .describe(
      'START-END (from 100000): each MCP server runs as a user id of its own from this range; the agent must run as root. Unset: as the agent user.',
    ),
  MINIMCP_WARM_POOL: warmPoolSizes
    .default({ demo: 2, github: 1, gmail: 1, figma: 1 })
    .describe(
      'Pre-spawned children per built-in type, TYPE:COUNT,... (0 disables); each idle one holds ~50 MB RSS.',
    ),
  MINIMCP_METRICS_LISTEN: listenAddress
    .default({ host: '127.0.0.1', port: 9464 })
    .describe('HOST:PORT of the Prometheus metrics listener (path /metrics); off disables it.'),
});

export const AgentConfigSchema = coreConfig.extend(agentConfig.shape);
export type AgentConfig = z.infer<typeof AgentConfigSchema>;
