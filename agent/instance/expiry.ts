// An instance's expiry timer: armed from the row's expires_at, re-read when
// it fires (the instance may have been extended meanwhile), else the stop.
import { findRuntimeSpec } from '../../core/db/instances.js';
import type { RuntimeContext } from './runtime-context.js';
import { stop } from './runtime-stop.js';

/** setTimeout's ceiling; longer expiries re-arm when it fires. */
const MAX_TIMER_MS = 2_147_000_000;

export function armExpiry(ctx: RuntimeContext): void {
  if (ctx.expiryTimer) clearTimeout(ctx.expiryTimer);
  const delay = Math.max(0, Math.min(ctx.spec.expires_at.getTime() - Date.now(), MAX_TIMER_MS));
  ctx.expiryTimer = setTimeout(() => void onExpiryTimer(ctx), delay);
  ctx.expiryTimer.unref();
}

async function onExpiryTimer(ctx: RuntimeContext): Promise<void> {
  if (ctx.state === 'stopping' || ctx.state === 'stopped') return;
  try {
    const current = await findRuntimeSpec(ctx.deps.pool, ctx.id);
    if (current && current.expires_at.getTime() > Date.now() && !current.deleted_at) {
      ctx.spec = current; // extended meanwhile
      armExpiry(ctx);
      return;
    }
  } catch (error) {
    ctx.log.warn(
      { err: String(error) },
      'could not re-read the instance at expiry; expiring it as scheduled',
    );
  }
  await stop(ctx, 'expired');
}
