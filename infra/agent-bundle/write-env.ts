// Runs as root before each start of the agent (systemd ExecStartPre=+): reads
// the instance's identity from IMDSv2 and its secrets from Secrets Manager,
// and writes them where only the service sees them — an environment file
// systemd reads (0600 root) and the TLS files (0600, the agent's user), both
// under /run, which does not survive a reboot.
import { chownSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { z } from 'zod';
import { replaceFileSync } from '../../core/replace-file.js';

const Settings = z.object({
  AWS_REGION: z.string().min(1),
  MINIMCP_DATABASE_SECRET_ARN: z.string().min(1),
  MINIMCP_TLS_SECRET_ARN: z.string().min(1),
  MINIMCP_GRPC_PORT: z.coerce.number().int().positive(),
  /** `public`: clients reach the node at its public IPv4; `private`: at its private one. */
  MINIMCP_ADVERTISE: z.enum(['public', 'private']),
  MINIMCP_RUNTIME_DIR: z.string().default('/run/minimcp'),
  MINIMCP_SERVICE_USER: z.string().default('minimcp'),
});

const DatabaseSecret = z.object({
  username: z.string().min(1),
  password: z.string().min(1),
  host: z.string().min(1),
  port: z.coerce.number().int().positive(),
  dbname: z.string().min(1),
});

const TlsSecret = z.object({ ca: z.string(), cert: z.string(), key: z.string() });

/** The SDK's variable for another metadata endpoint (tests run a fake one). */
const IMDS = `${(process.env.AWS_EC2_METADATA_SERVICE_ENDPOINT ?? 'http://169.254.169.254').replace(/\/$/, '')}/latest`;

async function imds(token: string, item: string): Promise<string | undefined> {
  const response = await fetch(`${IMDS}/meta-data/${item}`, {
    headers: { 'x-aws-ec2-metadata-token': token },
    signal: AbortSignal.timeout(2000),
  });
  if (response.status === 404) return undefined;
  if (!response.ok) throw new Error(`IMDS ${item}: HTTP ${response.status}`);
  return (await response.text()).trim();
}

async function instanceIdentity() {
  const tokenResponse = await fetch(`${IMDS}/api/token`, {
    method: 'PUT',
    headers: { 'x-aws-ec2-metadata-token-ttl-seconds': '60' },
    signal: AbortSignal.timeout(2000),
  });
  if (!tokenResponse.ok) throw new Error(`IMDSv2 token: HTTP ${tokenResponse.status}`);
  const token = await tokenResponse.text();
  const [instanceId, hostname, privateIp, publicIp] = await Promise.all(
    ['instance-id', 'local-hostname', 'local-ipv4', 'public-ipv4'].map((item) => imds(token, item)),
  );
  if (!instanceId || !hostname || !privateIp) throw new Error('IMDS: incomplete instance identity');
  return { instanceId, hostname, privateIp, publicIp };
}

/** systemd EnvironmentFile syntax: one KEY="value" per line, quotes and backslashes escaped. */
function environmentFile(values: Record<string, string>): string {
  return Object.entries(values)
    .map(([key, value]) => `${key}="${value.replace(/[\\"$`]/g, (c) => `\\${c}`)}"`)
    .join('\n')
    .concat('\n');
}

/** Written beside, then renamed: systemd never reads half a file. */
function writePrivate(file: string, content: string, owner?: { uid: number; gid: number }) {
  replaceFileSync(file, content, { mode: 0o600, owner });
}

async function main(): Promise<void> {
  const settings = Settings.parse(process.env);
  const identity = await instanceIdentity();
  const secrets = new SecretsManagerClient({ region: settings.AWS_REGION });
  const read = async (arn: string): Promise<unknown> => {
    const answer = await secrets.send(new GetSecretValueCommand({ SecretId: arn }));
    try {
      return JSON.parse(answer.SecretString ?? '') as unknown;
    } catch {
      // JSON.parse quotes the text it choked on: never let that reach the journal.
      throw new Error(`secret ${arn} is not JSON`);
    }
  };
  const [database, tls] = await Promise.all([
    read(settings.MINIMCP_DATABASE_SECRET_ARN).then((value) => DatabaseSecret.parse(value)),
    read(settings.MINIMCP_TLS_SECRET_ARN).then((value) => TlsSecret.parse(value)),
  ]);
  secrets.destroy();

  const { uid, gid } = serviceUser(settings.MINIMCP_SERVICE_USER);
  const tlsDir = path.join(settings.MINIMCP_RUNTIME_DIR, 'tls');
  mkdirSync(tlsDir, { recursive: true, mode: 0o700 });
  chownSync(tlsDir, uid, gid);
  const tlsFiles = {
    MINIMCP_TLS_CA_FILE: path.join(tlsDir, 'ca.crt'),
    MINIMCP_TLS_CERT_FILE: path.join(tlsDir, 'agent.crt'),
    MINIMCP_TLS_KEY_FILE: path.join(tlsDir, 'agent.key'),
  };
  writePrivate(tlsFiles.MINIMCP_TLS_CA_FILE, tls.ca, { uid, gid });
  writePrivate(tlsFiles.MINIMCP_TLS_CERT_FILE, tls.cert, { uid, gid });
  writePrivate(tlsFiles.MINIMCP_TLS_KEY_FILE, tls.key, { uid, gid });

  const user = encodeURIComponent(database.username);
  const password = encodeURIComponent(database.password);
  const publicHost =
    settings.MINIMCP_ADVERTISE === 'public' ? identity.publicIp : identity.privateIp;
  if (!publicHost) throw new Error('MINIMCP_ADVERTISE=public, but the instance has no public IPv4');
  writePrivate(
    path.join(settings.MINIMCP_RUNTIME_DIR, 'agent-secrets.env'),
    environmentFile({
      DATABASE_URL: `postgres://${user}:${password}@${database.host}:${database.port}/${encodeURIComponent(database.dbname)}?sslmode=require`,
      MINIMCP_NODE_NAME: identity.instanceId,
      MINIMCP_PUBLIC_HOST: publicHost,
      // The control plane dials this name; the agents' certificate covers it.
      MINIMCP_GRPC_ADVERTISE: `${identity.hostname}:${settings.MINIMCP_GRPC_PORT}`,
      // The deployment's set, issued at deploy time: never to be regenerated here.
      ...tlsFiles,
    }),
  );
}

/** uid and gid of the service account, from /etc/passwd (no native module needed). */
function serviceUser(name: string): { uid: number; gid: number } {
  for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
    const [user, , uid, gid] = line.split(':');
    if (user === name && uid !== undefined && gid !== undefined)
      return { uid: Number(uid), gid: Number(gid) };
  }
  throw new Error(`no user ${name} in /etc/passwd`);
}

main().catch((error: unknown) => {
  // The message names what failed; no secret value is ever part of it.
  console.error(`minimcp write-env: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
