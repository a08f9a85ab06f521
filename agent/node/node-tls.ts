// The agent's TLS set for its gRPC server: deployment-issued files when
// configured (on AWS the control plane trusts only that CA), else a local set
// generated on first start.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { AgentConfig } from '../../core/config.js';
import { ensureLocalCertificates, type TlsMaterial } from '../../core/tls.js';

export async function agentTlsMaterial(config: AgentConfig, dataDir: string): Promise<TlsMaterial> {
  const files = [
    config.MINIMCP_TLS_CA_FILE,
    config.MINIMCP_TLS_CERT_FILE,
    config.MINIMCP_TLS_KEY_FILE,
  ];
  if (files.some(Boolean)) {
    if (!files.every(Boolean)) {
      throw new Error(
        'MINIMCP_TLS_CA_FILE, MINIMCP_TLS_CERT_FILE and MINIMCP_TLS_KEY_FILE go together: set all three',
      );
    }
    const [ca, cert, key] = await Promise.all(files.map((file) => readFile(file!, 'utf8')));
    return { ca: ca!, cert: cert!, key: key! };
  }
  return (await ensureLocalCertificates(config.MINIMCP_TLS_DIR ?? path.join(dataDir, 'tls'))).agent;
}
