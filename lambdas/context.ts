// What request handlers can reach: the app's dependencies (built once per
// process or Lambda container) and the per-request variables.
import type { Context } from 'hono';
import type { ApiConfig } from '../core/config.js';
import type { EnvelopeCipher } from '../core/crypto/envelope.js';
import type { DatabasePool } from '../core/db/pool.js';
import type { UserRole } from '../core/domain.js';
import type { AgentResolver } from './control/agent-registry.js';
import type { InstanceService, RequestMeta } from './control/instance-service.js';
import type { Logger } from '../core/logger.js';
import type { Mailer } from './control/mailer.js';
import type { RateLimiter } from './control/rate-limit.js';
import type { RequestMetrics } from './request-metrics.js';

/** Who is calling: a user by API token, or the bootstrap admin token (no user behind it). */
export type Principal =
  | {
      kind: 'user';
      userId: string;
      email: string;
      name: string;
      role: UserRole;
      tokenId: string;
      tokenName: string;
      tokenExpiresAt: Date | null;
    }
  | { kind: 'bootstrap-admin'; role: 'admin' };

export interface AppEnv {
  Variables: {
    requestId: string;
    principal: Principal | undefined;
    log: Logger;
  };
}

export type AppContext = Context<AppEnv>;

/** Complete on purpose: every route registers, none depends on an optional dependency. */
export interface AppDeps {
  /** The API's database role: row-level security applies to it. */
  pool: DatabasePool;
  config: ApiConfig;
  cipher: EnvelopeCipher;
  logger: Logger;
  /** The caller's address as the platform reports it (not X-Forwarded-For). */
  clientIp: (c: AppContext) => string | undefined;
  /** Clients of the node agents (node drain moves instances with them). */
  agents: AgentResolver;
  /** Instances and their logs and events. */
  instances: InstanceService;
  /** Limits POST /v1/auth/token; built from config when absent (an override, no route depends on it). */
  authRateLimiter?: RateLimiter;
  /** Account mail; built from config (MINIMCP_MAILER) when absent. */
  mailer?: Mailer;
  /** Each answered request is recorded here when set (no route depends on it). */
  requestMetrics?: RequestMetrics;
}

/** Who asked, for the audit trail of the change the request makes. */
export function requestMeta(c: AppContext, deps: Pick<AppDeps, 'clientIp'>): RequestMeta {
  return {
    ip: deps.clientIp(c) ?? null,
    userAgent: c.req.header('user-agent') ?? null,
    requestId: c.get('requestId'),
  };
}
