// Where a new (or restored) instance runs: an active node with a fresh
// heartbeat, a free port and room under its capacity, least loaded first.
// The port is claimed in the caller's transaction (FOR UPDATE SKIP LOCKED), so
// concurrent creates never share a port.
import { sql, type CommonQueryMethods } from 'slonik';
import { z } from 'zod';
import { NoNodeAvailableError, PortPoolExhaustedError } from '../../../core/errors.js';
import { claimFreePort } from '../../../core/db/ports.js';

export const CandidateNode = z.object({
  id: z.string().uuid(),
  name: z.string(),
  public_host: z.string(),
  grpc_address: z.string(),
  free: z.number().int(),
  used: z.number().int(),
  capacity: z.number().int(),
});
export type CandidateNode = z.infer<typeof CandidateNode>;

export async function listCandidateNodes(
  db: CommonQueryMethods,
  options: { heartbeatFreshSeconds: number; excludeNodeId?: string },
): Promise<readonly CandidateNode[]> {
  return db.any(sql.type(CandidateNode)`
    SELECT n.id, n.name, n.public_host, n.grpc_address, p.free, p.used, n.capacity
    FROM nodes n
    JOIN LATERAL (
      SELECT count(*) FILTER (WHERE is_available)::int AS free,
             count(*) FILTER (WHERE NOT is_available)::int AS used
      FROM port_allocations WHERE node_id = n.id
    ) p ON true
    WHERE n.status = 'active'
      AND n.last_heartbeat > CURRENT_TIMESTAMP - make_interval(secs => ${options.heartbeatFreshSeconds})
      AND p.free > 0
      AND p.used < n.capacity
      ${options.excludeNodeId ? sql.fragment`AND n.id <> ${options.excludeNodeId}` : sql.fragment``}
    ORDER BY p.used::float / GREATEST(n.capacity, 1), n.name
  `);
}

export interface Placement {
  node: CandidateNode;
  port: number;
}

/**
 * Picks a node and claims one of its ports for the instance. Throws
 * NoNodeAvailableError when no node qualifies, PortPoolExhaustedError when
 * the qualifying nodes' ports were all taken meanwhile.
 */
export async function placeInstance(
  db: CommonQueryMethods,
  instanceId: string,
  options: { heartbeatFreshSeconds: number; excludeNodeId?: string },
): Promise<Placement> {
  const candidates = await listCandidateNodes(db, options);
  if (candidates.length === 0) {
    throw new NoNodeAvailableError('no active node with a fresh heartbeat and a free port', {});
  }
  for (const node of candidates) {
    try {
      return { node, port: await claimFreePort(db, node.id, instanceId) };
    } catch (error) {
      if (!(error instanceof PortPoolExhaustedError)) throw error;
    }
  }
  throw new PortPoolExhaustedError('every port of every available node is taken', {
    nodes: candidates.map((c) => c.name),
  });
}
