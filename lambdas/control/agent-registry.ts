// The control plane's agent clients, one per node gRPC address, kept for the
// life of the process (or Lambda container) so channels are reused, and the
// control plane's mutual-TLS material wherever it comes from.
import { createAgentClient, type AgentClient, type AgentClientOptions } from './agent-client.js';
import { ensureLocalCertificates, type TlsMaterial } from '../../core/tls.js';

/** What the control plane needs of a node to reach its agent. */
export interface AgentNode {
  id: string;
  grpc_address: string;
}

/** The client for a node's agent. */
export type AgentResolver = (node: AgentNode) => AgentClient;

export interface AgentRegistry {
  forNode: AgentResolver;
  /** Closes every client; later calls of forNode open new ones. */
  close(): void;
}

export function createAgentRegistry(options: Omit<AgentClientOptions, 'address'>): AgentRegistry {
  const clients = new Map<string, AgentClient>();
  return {
    forNode(node) {
      let client = clients.get(node.grpc_address);
      if (!client) {
        client = createAgentClient({ ...options, address: node.grpc_address });
        clients.set(node.grpc_address, client);
      }
      return client;
    },
    close() {
      const open = [...clients.values()];
      clients.clear();
      for (const client of open) client.close();
    },
  };
}

/**
 * The control plane's certificate, key and CA: given as PEM (on AWS, from the
 * SecureString parameters the deploy step writes), or else the local stack's
 * set in `dir`, generated there on first use.
 */
export async function resolveControlPlaneTls(source: {
  ca?: string | undefined;
  cert?: string | undefined;
  key?: string | undefined;
  dir: string;
}): Promise<TlsMaterial> {
  const { ca, cert, key } = source;
  if (ca !== undefined && cert !== undefined && key !== undefined) return { ca, cert, key };
  if (ca !== undefined || cert !== undefined || key !== undefined)
    throw new Error(
      'set all three of MINIMCP_TLS_CA, MINIMCP_TLS_CERT and MINIMCP_TLS_KEY, or none of them',
    );
  return (await ensureLocalCertificates(source.dir)).controlPlane;
}
