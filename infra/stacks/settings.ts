// Deployment settings: CDK context (`cdk deploy -c key=value` or cdk.json)
// parsed once by zod, with the defaults docs/deploy.md documents.
import { z } from 'zod';
import { childUidRange } from '../../core/config.js';

/** `-c key=value` arrives as a string; cdk.json and tests give real JSON values. */
function fromText<T extends z.ZodType>(schema: T) {
  return z.preprocess((value) => {
    if (typeof value !== 'string') return value;
    const text = value.trim();
    if (text === '') return undefined;
    try {
      return JSON.parse(text) as unknown;
    } catch {
      // Not JSON: a bare word or a comma-separated list, left to the schema below.
      return text;
    }
  }, schema);
}

const cidr = z
  .string()
  .regex(/^(\d{1,3}\.){3}\d{1,3}\/\d{1,2}$/, 'must be an IPv4 CIDR such as 203.0.113.0/24');

/** A list given as JSON (`["a","b"]`) or comma-separated (`a,b`). */
const list = <T extends z.ZodType>(item: T) =>
  z.preprocess((value) => {
    if (typeof value !== 'string') return value;
    const text = value.trim();
    if (text.startsWith('[')) return JSON.parse(text) as unknown;
    return text === '' ? [] : text.split(',').map((part) => part.trim());
  }, z.array(item));

/** The values CloudWatch Logs accepts as a retention. */
const LOG_RETENTION_DAYS = [
  1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288,
  3653,
];

const int = (min: number, max: number) => fromText(z.number().int().min(min).max(max));
const bool = fromText(z.boolean());

export const DeploySettingsSchema = z
  .object({
    stackName: z
      .string()
      .regex(/^[A-Za-z][A-Za-z0-9-]{0,63}$/, 'must be a CloudFormation stack name')
      .default('MiniMcp')
      .describe('CloudFormation stack name; also names the SSM prefix and the metrics namespace.'),
    ssmPrefix: z
      .string()
      .regex(/^(\/[\w.-]+)+$/, 'must be an SSM path such as /minimcp/prod')
      .optional()
      .describe('SSM path of the configuration parameters. Default: /minimcp/<stackName>.'),
    vpcCidr: cidr.default('10.40.0.0/16').describe('CIDR of the new VPC (two AZs).'),
    agentsPublic: bool
      .default(true)
      .describe(
        'Agents in public subnets with public IPs (clients reach them directly); false puts them in private subnets behind a NAT gateway.',
      ),
    natGateways: int(0, 2)
      .optional()
      .describe('NAT gateways. Default: 0 with public agents, 1 with private agents.'),
    clientCidrs: list(cidr)
      .default(['0.0.0.0/0'])
      .describe(
        'Who may reach the instance ports on the agents (each port needs its bearer token).',
      ),
    agentInstanceType: z
      .string()
      .regex(/^[a-z0-9-]+\.[a-z0-9]+$/, 'must be an EC2 instance type such as t4g.small')
      .default('t4g.small')
      .describe('EC2 instance type of the agents (Graviton: arm64 AMI).'),
    agentMinCapacity: int(0, 100).default(1).describe('Fewest agent nodes.'),
    agentMaxCapacity: int(1, 100).default(4).describe('Most agent nodes.'),
    agentDesiredCapacity: int(0, 100)
      .optional()
      .describe('Agent nodes to run now. Unset: keep the current count (min on first deploy).'),
    agentVolumeGiB: int(8, 1024)
      .default(20)
      .describe('Root volume of each agent (gp3, encrypted).'),
    portRangeStart: int(1024, 65535).default(3001).describe('First instance port on each agent.'),
    portRangeEnd: int(1024, 65535).default(3100).describe('Last instance port on each agent.'),
    agentChildUids: z
      .string()
      // The agent's own rule (MINIMCP_CHILD_UIDS), kept as text: it goes to the agent as is.
      .superRefine((value, ctx) => {
        const parsed = childUidRange.safeParse(value);
        if (!parsed.success)
          for (const issue of parsed.error.issues)
            ctx.addIssue({ code: 'custom', message: issue.message });
      })
      .optional()
      .describe(
        'START-END (from 100000): each MCP server runs as an OS user of its own, kept from the metadata service; the agent runs as root (docs/deploy.md).',
      ),
    grpcPort: int(1024, 65535).default(50051).describe('Agent gRPC port (mutual TLS).'),
    postgresVersion: fromText(z.union([z.literal(16), z.literal(17), z.literal(18)]))
      .default(17)
      .describe('PostgreSQL major version (RDS chooses the newest minor).'),
    dbInstanceClass: z
      .string()
      .regex(
        /^[a-z0-9]+\.[a-z0-9]+$/,
        'must be an instance class such as t4g.small (no db. prefix)',
      )
      .default('t4g.small')
      .describe('RDS instance class, without the db. prefix.'),
    dbAllocatedStorageGiB: int(20, 65536).default(20).describe('Initial RDS storage.'),
    dbMaxAllocatedStorageGiB: int(20, 65536)
      .default(100)
      .describe('RDS storage autoscaling limit.'),
    dbMultiAz: bool.default(false).describe('A standby in the second AZ.'),
    dbBackupRetentionDays: int(1, 35).default(7).describe('Automated backup retention.'),
    deletionProtection: bool
      .default(true)
      .describe('Protect the database from deletion; set false before `cdk destroy`.'),
    credentialRotationDays: int(1, 365)
      .default(30)
      .describe('Rotation period of the database master credentials.'),
    apiThrottleRate: int(1, 10000).default(50).describe('API requests per second, steady state.'),
    apiThrottleBurst: int(1, 5000).default(100).describe('API request burst.'),
    corsOrigins: list(z.string().min(1))
      .default([])
      .describe('Browser origins allowed to call the API (CORS); empty: no CORS headers.'),
    logRetentionDays: int(1, 3653)
      .refine((days) => LOG_RETENTION_DAYS.includes(days), {
        message: `must be one of ${LOG_RETENTION_DAYS.join(', ')}`,
      })
      .default(30)
      .describe('Retention of every log group (a CloudWatch Logs retention value).'),
    maintenanceSchedule: z
      .string()
      .regex(/^(rate|cron)\(.+\)$/, 'must be an EventBridge rate(...) or cron(...) expression')
      .default('rate(1 minute)')
      .describe('When the maintenance job runs.'),
    alarmEmail: z.email().optional().describe('Subscribes this address to the alarm topic.'),
    deployStepNonce: fromText(z.union([z.string(), z.number()]).transform(String))
      .optional()
      .describe(
        'Any new value re-runs the deploy-time database step (after changing an application role password).',
      ),
    tlsGeneration: int(1, 1_000_000)
      .default(1)
      .describe('Bump to issue a new mTLS CA and certificates for agents and control plane.'),
    mailFrom: z
      .email()
      .optional()
      .describe(
        'Sender of account mail (verification links) through Amazon SES: an address or domain verified in SES in the stack’s region. Unset: account mail is dropped (logged).',
      ),
  })
  .superRefine((s, ctx) => {
    if (s.portRangeEnd < s.portRangeStart)
      ctx.addIssue({ code: 'custom', path: ['portRangeEnd'], message: 'must be ≥ portRangeStart' });
    // (An invalid range was already reported on the field itself.)
    const uids =
      s.agentChildUids === undefined ? undefined : childUidRange.safeParse(s.agentChildUids);
    if (uids?.success) {
      const { start, end } = uids.data;
      if (end - start + 1 < s.portRangeEnd - s.portRangeStart + 1)
        ctx.addIssue({
          code: 'custom',
          path: ['agentChildUids'],
          message: 'needs at least as many user ids as instance ports (plus the warm pool)',
        });
    }
    if (s.grpcPort >= s.portRangeStart && s.grpcPort <= s.portRangeEnd)
      ctx.addIssue({
        code: 'custom',
        path: ['grpcPort'],
        message: 'must be outside the port range',
      });
    if (s.agentMaxCapacity < s.agentMinCapacity)
      ctx.addIssue({
        code: 'custom',
        path: ['agentMaxCapacity'],
        message: 'must be ≥ agentMinCapacity',
      });
    if (s.dbMaxAllocatedStorageGiB < s.dbAllocatedStorageGiB)
      ctx.addIssue({
        code: 'custom',
        path: ['dbMaxAllocatedStorageGiB'],
        message: 'must be ≥ dbAllocatedStorageGiB',
      });
    if (s.agentsPublic === false && s.natGateways === 0)
      ctx.addIssue({
        code: 'custom',
        path: ['natGateways'],
        message: 'private agents need a NAT gateway to reach third-party APIs',
      });
  });

export type DeploySettingsInput = z.input<typeof DeploySettingsSchema>;

export interface DeploySettings extends z.output<typeof DeploySettingsSchema> {
  ssmPrefix: string;
  natGateways: number;
}

/** Parses the context values named by the schema; the error lists every bad one. */
export function parseDeploySettings(context: Record<string, unknown>): DeploySettings {
  const keys = Object.keys(DeploySettingsSchema.shape);
  const input = Object.fromEntries(
    keys.filter((key) => context[key] !== undefined).map((key) => [key, context[key]]),
  );
  const result = DeploySettingsSchema.safeParse(input);
  if (!result.success) {
    const issues = result.error.issues.map(
      (issue) => `${issue.path.join('.') || '(context)'}: ${issue.message}`,
    );
    throw new Error(`invalid CDK context: ${issues.join('; ')}`);
  }
  const settings = result.data;
  return {
    ...settings,
    ssmPrefix: settings.ssmPrefix ?? `/minimcp/${settings.stackName}`,
    natGateways: settings.natGateways ?? (settings.agentsPublic ? 0 : 1),
  };
}

/** Reads every setting from a construct's context (cdk.json, `-c`, or a test's App context). */
export function readDeploySettings(tryGetContext: (key: string) => unknown): DeploySettings {
  const keys = Object.keys(DeploySettingsSchema.shape);
  return parseDeploySettings(Object.fromEntries(keys.map((key) => [key, tryGetContext(key)])));
}
