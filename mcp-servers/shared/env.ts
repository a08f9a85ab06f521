// Parses the environment the host agent gives every built-in server: the decrypted
// key (MINIMCP_API_KEY), the instance config (MINIMCP_CONFIG, JSON) and an
// optional upstream base URL override (MINIMCP_UPSTREAM_URL).
import { z } from 'zod';

/** Config keys every built-in server understands; each server extends it. */
export const BaseConfigSchema = z.looseObject({
  api_version: z.string().optional(),
  /** Per-attempt timeout of one upstream HTTP request. */
  timeout_ms: z.number().int().min(100).max(300_000).optional(),
  /** Retries after a 429, a 5xx or a network failure (5xx only for safe requests). */
  max_retries: z.number().int().min(0).max(5).optional(),
});
export type BaseConfig = z.infer<typeof BaseConfigSchema>;

export interface ServerEnv<C extends BaseConfig> {
  apiKey: string | undefined;
  config: C;
  upstreamUrl: string | undefined;
}

export type EnvResult<C extends BaseConfig> =
  { ok: true; value: ServerEnv<C> } | { ok: false; message: string };

const nonEmpty = (value: string | undefined): string | undefined =>
  value === undefined || value.trim() === '' ? undefined : value.trim();

export function readServerEnv<C extends BaseConfig>(
  env: NodeJS.ProcessEnv,
  options: { requiresKey: boolean; configSchema: z.ZodType<C> },
): EnvResult<C> {
  const apiKey = nonEmpty(env.MINIMCP_API_KEY);
  if (options.requiresKey && apiKey === undefined)
    return {
      ok: false,
      message:
        'MINIMCP_API_KEY is not set: this server needs the API key of its service (the agent passes the stored key).',
    };

  let rawConfig: unknown = {};
  const configText = nonEmpty(env.MINIMCP_CONFIG);
  if (configText !== undefined) {
    try {
      rawConfig = JSON.parse(configText);
    } catch (error) {
      return {
        ok: false,
        message: `MINIMCP_CONFIG is not valid JSON (${(error as Error).message}); expected an object such as {"api_version":"v1"}.`,
      };
    }
  }
  const config = options.configSchema.safeParse(rawConfig);
  if (!config.success)
    return { ok: false, message: `MINIMCP_CONFIG is invalid: ${z.prettifyError(config.error)}` };

  const upstreamText = nonEmpty(env.MINIMCP_UPSTREAM_URL);
  let upstreamUrl: string | undefined;
  if (upstreamText !== undefined) {
    const parsed = z.url({ protocol: /^https?$/ }).safeParse(upstreamText);
    if (!parsed.success)
      return {
        ok: false,
        message: `MINIMCP_UPSTREAM_URL must be an http(s) URL, got ${JSON.stringify(upstreamText)}.`,
      };
    upstreamUrl = parsed.data.replace(/\/+$/, '');
  }

  return { ok: true, value: { apiKey, config: config.data, upstreamUrl } };
}
