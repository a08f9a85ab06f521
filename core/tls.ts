// Mutual TLS between the control plane and the agents: a private CA, the leaf
// certificates it signs, the set the local stack keeps on disk, and the gRPC
// credentials built from them.
import { X509Certificate, createPrivateKey, randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import type { generate as generateWithSelfsigned } from 'selfsigned';

/** A PEM certificate and its PEM (PKCS#8) private key. */
export interface CertificateAndKey {
  cert: string;
  key: string;
}

export type CertificateAuthority = CertificateAndKey;
export type IssuedCertificate = CertificateAndKey;

/** One side of a mutual-TLS connection: the CA it trusts, its own certificate and key. */
export interface TlsMaterial {
  ca: string;
  cert: string;
  key: string;
}

export type CertificateUsage = 'server' | 'client';

export interface IssueCertificateOptions {
  commonName: string;
  /** DNS names and IP addresses the certificate is valid for (told apart by `net.isIP`). */
  altNames?: string[];
  usage: CertificateUsage;
  validityDays?: number;
}

export const AGENT_COMMON_NAME = 'minimcp-agent';
export const CONTROL_PLANE_COMMON_NAME = 'minimcp-control-plane';
/** Loopback names a local agent is dialled by: gRPC checks the target host against these. */
export const LOOPBACK_ALT_NAMES = ['localhost', '127.0.0.1', '::1'];

const CA_VALIDITY_DAYS = 3650;
const LEAF_VALIDITY_DAYS = 825;
/** A stored set closer than this to expiry is replaced at start rather than failing later. */
const RENEW_BEFORE_MS = 30 * 24 * 3600 * 1000;
/** Backdating absorbs small clock differences between the machines of a deployment. */
const CLOCK_SKEW_MS = 5 * 60 * 1000;
const DAY_MS = 24 * 3600 * 1000;

// EC P-256 keys: fast to generate (tens of ms for a whole set) and what TLS 1.3 prefers.
const KEY_OPTIONS = { keyType: 'ec', curve: 'P-256', algorithm: 'sha256' } as const;

/**
 * selfsigned (and the ASN.1/X.509 libraries behind it) is loaded on first use:
 * only the local stack generates certificates, and loaded eagerly it added
 * ~17 MB to every agent's resident memory, including agents that only read
 * certificates issued by the deployment.
 */
async function generate(
  ...args: Parameters<typeof generateWithSelfsigned>
): ReturnType<typeof generateWithSelfsigned> {
  const selfsigned = await import('selfsigned');
  return selfsigned.generate(...args);
}

function validity(days: number): { notBeforeDate: Date; notAfterDate: Date } {
  const now = Date.now();
  return {
    notBeforeDate: new Date(now - CLOCK_SKEW_MS),
    notAfterDate: new Date(now + days * DAY_MS),
  };
}

export async function generateCertificateAuthority(
  options: { commonName?: string; validityDays?: number } = {},
): Promise<CertificateAuthority> {
  const pems = await generate([{ name: 'commonName', value: options.commonName ?? 'MiniMCP CA' }], {
    ...KEY_OPTIONS,
    ...validity(options.validityDays ?? CA_VALIDITY_DAYS),
    extensions: [
      // pathLen 0: the CA signs leaves only, never another CA.
      { name: 'basicConstraints', cA: true, pathLenConstraint: 0, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    ],
  });
  return { cert: pems.cert, key: pems.private };
}

/**
 * Signs a leaf with `ca`. Its extended key usage is either serverAuth or
 * clientAuth, never both, so an agent's certificate cannot be presented as
 * the control plane's.
 */
export async function issueCertificate(
  ca: CertificateAuthority,
  options: IssueCertificateOptions,
): Promise<IssuedCertificate> {
  const altNames = (options.altNames ?? LOOPBACK_ALT_NAMES).map((name) =>
    isIP(name) ? { type: 7 as const, ip: name } : { type: 2 as const, value: name },
  );
  const pems = await generate([{ name: 'commonName', value: options.commonName }], {
    ...KEY_OPTIONS,
    ...validity(options.validityDays ?? LEAF_VALIDITY_DAYS),
    ca: { cert: ca.cert, key: ca.key },
    extensions: [
      { name: 'basicConstraints', cA: false, critical: true },
      { name: 'keyUsage', digitalSignature: true, critical: true },
      options.usage === 'server'
        ? { name: 'extKeyUsage', serverAuth: true }
        : { name: 'extKeyUsage', clientAuth: true },
      ...(altNames.length > 0 ? [{ name: 'subjectAltName' as const, altNames }] : []),
    ],
  });
  return { cert: pems.cert, key: pems.private };
}

/** The local stack's certificates, as kept in one directory. */
export interface LocalCertificates {
  dir: string;
  /** True when this call generated the set (first start, or the stored one was unusable). */
  created: boolean;
  ca: CertificateAuthority;
  /** For the agent's gRPC server (`createServerCredentials`). */
  agent: TlsMaterial;
  /** For the API and the maintenance job dialling agents (`createAgentClient`). */
  controlPlane: TlsMaterial;
}

export const LOCAL_CERTIFICATE_FILES = {
  caCert: 'ca.crt',
  caKey: 'ca.key',
  agentCert: 'agent.crt',
  agentKey: 'agent.key',
  controlPlaneCert: 'control-plane.crt',
  controlPlaneKey: 'control-plane.key',
} as const;
type FileId = keyof typeof LOCAL_CERTIFICATE_FILES;

const PRIVATE_KEY_MODE = 0o600;
const CERTIFICATE_MODE = 0o644;

function isPrivateKeyFile(id: FileId): boolean {
  return id.endsWith('Key');
}

async function generateLocalSet(): Promise<Record<FileId, string>> {
  const ca = await generateCertificateAuthority({ commonName: 'MiniMCP local CA' });
  const [agent, controlPlane] = await Promise.all([
    issueCertificate(ca, { commonName: AGENT_COMMON_NAME, usage: 'server' }),
    issueCertificate(ca, { commonName: CONTROL_PLANE_COMMON_NAME, usage: 'client' }),
  ]);
  return {
    caCert: ca.cert,
    caKey: ca.key,
    agentCert: agent.cert,
    agentKey: agent.key,
    controlPlaneCert: controlPlane.cert,
    controlPlaneKey: controlPlane.key,
  };
}

/** Reads a stored set; `undefined` when a file is missing. */
async function readLocalSet(dir: string): Promise<Record<FileId, string> | undefined> {
  const entries = await Promise.all(
    (Object.keys(LOCAL_CERTIFICATE_FILES) as FileId[]).map(async (id) => {
      try {
        return [id, await readFile(path.join(dir, LOCAL_CERTIFICATE_FILES[id]), 'utf8')] as const;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw new Error(`cannot read ${LOCAL_CERTIFICATE_FILES[id]} in ${dir}`, { cause: error });
      }
    }),
  );
  if (entries.some((entry) => entry === undefined)) return undefined;
  return Object.fromEntries(entries as (readonly [FileId, string])[]) as Record<FileId, string>;
}

/** Why a stored set cannot be used, or `undefined` when it can. */
function problemWithSet(set: Record<FileId, string>, now: number): string | undefined {
  try {
    const ca = new X509Certificate(set.caCert);
    if (!ca.ca) return 'ca.crt is not a CA certificate';
    if (!ca.checkPrivateKey(createPrivateKey(set.caKey))) return 'ca.key does not match ca.crt';
    const pairs: [X509Certificate, string, string][] = [
      [new X509Certificate(set.agentCert), set.agentKey, 'agent'],
      [new X509Certificate(set.controlPlaneCert), set.controlPlaneKey, 'control-plane'],
    ];
    for (const [cert, key, name] of pairs) {
      if (!cert.verify(ca.publicKey)) return `${name}.crt is not signed by ca.crt`;
      if (!cert.checkPrivateKey(createPrivateKey(key))) return `${name}.key does not match`;
    }
    for (const [cert, name] of [[ca, 'ca'], ...pairs.map(([c, , n]) => [c, n] as const)] as const) {
      if (Date.parse(cert.validTo) - now < RENEW_BEFORE_MS) return `${name}.crt expires soon`;
    }
    return undefined;
  } catch (error) {
    return `unparsable: ${(error as Error).message}`;
  }
}

function toLocalCertificates(
  dir: string,
  set: Record<FileId, string>,
  created: boolean,
): LocalCertificates {
  return {
    dir,
    created,
    ca: { cert: set.caCert, key: set.caKey },
    agent: { ca: set.caCert, cert: set.agentCert, key: set.agentKey },
    controlPlane: { ca: set.caCert, cert: set.controlPlaneCert, key: set.controlPlaneKey },
  };
}

function isDirectoryTaken(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException).code;
  return code === 'ENOTEMPTY' || code === 'EEXIST';
}

/**
 * The local stack's CA, agent server certificate and control-plane client
 * certificate in `dir` (which this function owns): reused when present and
 * valid, otherwise generated. Private keys are written 0600 and the directory
 * 0700. The set is written to a temporary sibling and renamed into place, so
 * two processes starting at once end up sharing one complete set.
 */
export async function ensureLocalCertificates(dir: string): Promise<LocalCertificates> {
  const target = path.resolve(dir);
  const existing = await readLocalSet(target);
  if (existing && problemWithSet(existing, Date.now()) === undefined)
    return toLocalCertificates(target, existing, false);

  const parent = path.dirname(target);
  await mkdir(parent, { recursive: true, mode: 0o700 });
  const staging = await mkdtemp(path.join(parent, `.${path.basename(target)}-`));
  try {
    const set = await generateLocalSet();
    for (const id of Object.keys(set) as FileId[]) {
      const file = path.join(staging, LOCAL_CERTIFICATE_FILES[id]);
      const mode = isPrivateKeyFile(id) ? PRIVATE_KEY_MODE : CERTIFICATE_MODE;
      await writeFile(file, set[id], { mode, flag: 'wx' });
      // The umask may have narrowed the mode; make it exact.
      await chmod(file, mode);
    }
    await chmod(staging, 0o700);

    try {
      await rename(staging, target);
      return toLocalCertificates(target, set, true);
    } catch (error) {
      if (!isDirectoryTaken(error)) throw error;
    }
    // The target holds files: either another process just installed a good
    // set (use it), or it is the unusable set we found (move it aside).
    const winner = await readLocalSet(target);
    if (winner && problemWithSet(winner, Date.now()) === undefined)
      return toLocalCertificates(target, winner, false);
    const aside = `${target}.replaced-${randomBytes(4).toString('hex')}`;
    await rename(target, aside);
    try {
      await rename(staging, target);
    } finally {
      await rm(aside, { recursive: true, force: true });
    }
    return toLocalCertificates(target, set, true);
  } finally {
    // Gone already when it was renamed into place.
    await rm(staging, { recursive: true, force: true });
  }
}

/** An agent's gRPC server credentials: TLS with a client certificate signed by `ca` required. */
export function createServerCredentials(tls: TlsMaterial): grpc.ServerCredentials {
  return grpc.ServerCredentials.createSsl(
    Buffer.from(tls.ca),
    [{ private_key: Buffer.from(tls.key), cert_chain: Buffer.from(tls.cert) }],
    true,
  );
}

/** The control plane's channel credentials: trusts only `ca`, presents its own certificate. */
export function createClientCredentials(tls: TlsMaterial): grpc.ChannelCredentials {
  return grpc.credentials.createSsl(
    Buffer.from(tls.ca),
    Buffer.from(tls.key),
    Buffer.from(tls.cert),
  );
}
