// Certificates for mutual TLS: leaves signed by the CA with the right names
// and usage, and the local set created once on disk with private modes, then
// reused.
import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import {
  LOCAL_CERTIFICATE_FILES,
  ensureLocalCertificates,
  generateCertificateAuthority,
  issueCertificate,
} from '../../../core/tls.js';

describe('issuing certificates', () => {
  it('signs a server leaf with the CA, for localhost and 127.0.0.1, usable only by servers', async () => {
    const ca = await generateCertificateAuthority();
    const leaf = await issueCertificate(ca, { commonName: 'agent-1', usage: 'server' });

    const caCert = new X509Certificate(ca.cert);
    const cert = new X509Certificate(leaf.cert);
    expect(caCert.ca).toBe(true);
    expect(cert.ca).toBe(false);
    expect(cert.verify(caCert.publicKey)).toBe(true);
    expect(cert.checkIssued(caCert)).toBe(true);
    expect(cert.subject).toContain('CN=agent-1');
    expect(cert.checkHost('localhost')).toBe('localhost');
    expect(cert.checkIP('127.0.0.1')).toBe('127.0.0.1');
    expect(cert.checkHost('example.com')).toBeUndefined();
    expect(cert.keyUsage).toEqual(['1.3.6.1.5.5.7.3.1']); // serverAuth only
  });

  it('issues client leaves for clientAuth only, with the names asked for', async () => {
    const ca = await generateCertificateAuthority();
    const leaf = await issueCertificate(ca, {
      commonName: 'api',
      usage: 'client',
      altNames: ['api.internal', '10.0.0.7'],
    });
    const cert = new X509Certificate(leaf.cert);
    expect(cert.keyUsage).toEqual(['1.3.6.1.5.5.7.3.2']); // clientAuth only
    expect(cert.checkHost('api.internal')).toBe('api.internal');
    expect(cert.checkIP('10.0.0.7')).toBe('10.0.0.7');
    expect(cert.checkHost('localhost')).toBeUndefined();
  });

  it('a leaf of another CA does not verify against this one', async () => {
    const [ca, other] = await Promise.all([
      generateCertificateAuthority(),
      generateCertificateAuthority(),
    ]);
    const leaf = await issueCertificate(other, { commonName: 'x', usage: 'client' });
    expect(new X509Certificate(leaf.cert).verify(new X509Certificate(ca.cert).publicKey)).toBe(
      false,
    );
  });
});

describe('the local certificate set', () => {
  let parent: string;
  let dir: string;
  beforeEach(async () => {
    parent = await mkdtemp(path.join(tmpdir(), 'minimcp-certs-'));
    dir = path.join(parent, 'data', 'certs');
  });
  afterEach(() => rm(parent, { recursive: true, force: true }));

  async function modeOf(file: string): Promise<number> {
    return (await stat(path.join(dir, file))).mode & 0o777;
  }

  it('is created on first start with private keys 0600 and a 0700 directory', async () => {
    const certs = await ensureLocalCertificates(dir);

    expect(certs.created).toBe(true);
    expect((await stat(dir)).mode & 0o777).toBe(0o700);
    for (const file of [
      LOCAL_CERTIFICATE_FILES.caKey,
      LOCAL_CERTIFICATE_FILES.agentKey,
      LOCAL_CERTIFICATE_FILES.controlPlaneKey,
    ])
      expect(await modeOf(file)).toBe(0o600);
    for (const file of [
      LOCAL_CERTIFICATE_FILES.caCert,
      LOCAL_CERTIFICATE_FILES.agentCert,
      LOCAL_CERTIFICATE_FILES.controlPlaneCert,
    ])
      expect(await modeOf(file)).toBe(0o644);
    expect(await readFile(path.join(dir, LOCAL_CERTIFICATE_FILES.agentKey), 'utf8')).toBe(
      certs.agent.key,
    );

    const ca = new X509Certificate(certs.ca.cert);
    const agent = new X509Certificate(certs.agent.cert);
    const controlPlane = new X509Certificate(certs.controlPlane.cert);
    expect(agent.verify(ca.publicKey) && controlPlane.verify(ca.publicKey)).toBe(true);
    expect(agent.keyUsage).toEqual(['1.3.6.1.5.5.7.3.1']);
    expect(controlPlane.keyUsage).toEqual(['1.3.6.1.5.5.7.3.2']);
    expect(certs.agent.ca).toBe(certs.ca.cert);
    expect(certs.controlPlane.ca).toBe(certs.ca.cert);
  });

  it('is reused, unchanged, on the next start', async () => {
    const first = await ensureLocalCertificates(dir);
    const second = await ensureLocalCertificates(dir);

    expect(second.created).toBe(false);
    expect(second.ca).toEqual(first.ca);
    expect(second.agent).toEqual(first.agent);
    expect(second.controlPlane).toEqual(first.controlPlane);
  });

  it('is replaced as a whole when a file is missing or damaged', async () => {
    const first = await ensureLocalCertificates(dir);
    await writeFile(path.join(dir, LOCAL_CERTIFICATE_FILES.agentCert), 'not a certificate');

    const second = await ensureLocalCertificates(dir);

    expect(second.created).toBe(true);
    expect(second.ca.cert).not.toBe(first.ca.cert);
    const ca = new X509Certificate(second.ca.cert);
    expect(new X509Certificate(second.agent.cert).verify(ca.publicKey)).toBe(true);
    expect(await modeOf(LOCAL_CERTIFICATE_FILES.caKey)).toBe(0o600);
    expect((await ensureLocalCertificates(dir)).created).toBe(false);
    expect(await readdir(path.dirname(dir))).toEqual(['certs']);
  });

  it('two processes starting at once end up with one shared set', async () => {
    const [a, b] = await Promise.all([ensureLocalCertificates(dir), ensureLocalCertificates(dir)]);
    const onDisk = await ensureLocalCertificates(dir);

    expect(a.ca.cert).toBe(onDisk.ca.cert);
    expect(b.ca.cert).toBe(onDisk.ca.cert);
    expect(b.agent).toEqual(onDisk.agent);
    expect([a.created, b.created].filter(Boolean)).toHaveLength(1);
    // The loser's staging directory is gone.
    expect(await readdir(path.dirname(dir))).toEqual(['certs']);
  });
});
