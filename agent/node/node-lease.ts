// One agent per node name: the agent holds a session-level advisory lock on
// its node for its whole life, on a connection of its own. A second agent with
// the same name is refused at start, so two agents never run the same
// instances. If the lock's connection drops, the lease is re-taken; if another
// agent took it meanwhile, the lease reports itself lost.
import pg from 'pg';

export interface NodeLease {
  /** Resolves if the lease is lost for good (another agent holds the node). */
  readonly lost: Promise<void>;
  release(): Promise<void>;
}

export class NodeLeaseHeldError extends Error {
  constructor(readonly nodeName: string) {
    super(`another agent is already running as node "${nodeName}"`);
    this.name = 'NodeLeaseHeldError';
  }
}

const LOCK_SQL = `SELECT pg_try_advisory_lock(hashtext('minimcp-node'), hashtext($1)) AS taken`;

export async function acquireNodeLease(options: {
  databaseUrl: string;
  nodeName: string;
  retryDelayMs?: number;
  onDiagnostic?: (message: string) => void;
}): Promise<NodeLease> {
  const retryDelayMs = options.retryDelayMs ?? 1000;
  const diagnostic = options.onDiagnostic ?? (() => undefined);
  let client: pg.Client | undefined;
  let released = false;
  let markLost!: () => void;
  const lost = new Promise<void>((resolve) => (markLost = resolve));

  const take = async (): Promise<boolean> => {
    const next = new pg.Client({
      connectionString: options.databaseUrl,
      application_name: `minimcp-agent-lease:${options.nodeName}`,
    });
    next.on('error', () => undefined); // surfaced through 'end' below
    await next.connect();
    const result = await next.query<{ taken: boolean }>(LOCK_SQL, [options.nodeName]);
    if (!result.rows[0]?.taken) {
      await next.end();
      return false;
    }
    client = next;
    next.once('end', () => {
      if (released) return;
      diagnostic('node lease connection lost; re-taking it');
      void retake();
    });
    return true;
  };

  const retake = async () => {
    while (!released) {
      try {
        if (await take()) return;
        diagnostic('node lease taken by another agent');
        markLost();
        return;
      } catch {
        // The database is unreachable: keep running what we run, try again.
        await new Promise((r) => setTimeout(r, retryDelayMs));
      }
    }
  };

  if (!(await take())) throw new NodeLeaseHeldError(options.nodeName);
  return {
    lost,
    async release() {
      released = true;
      await client
        ?.end()
        .catch((error: unknown) =>
          diagnostic(`node lease release: closing its connection failed: ${String(error)}`),
        );
    },
  };
}
