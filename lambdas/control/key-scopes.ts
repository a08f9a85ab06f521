// Whether a key being stored grants its type's required_scopes, asked of the
// upstream where the upstream tells: GitHub reports a classic token's scopes
// in the X-OAuth-Scopes header of any API answer. The answer is advice: a
// missing scope, a refused token, or an upstream that is slow or unreachable
// becomes a warning and never stops the key from being stored.
import type { Logger } from '../../core/logger.js';

/** What the answer to PUT /v1/keys/{type} says about the key's scopes. */
export interface ScopeCheck {
  /** Whether the upstream reported the key's scopes and they were compared. */
  checked: boolean;
  /** The type's required_scopes. */
  required: string[];
  /** What the upstream reported, when it did. */
  granted: string[] | null;
  /** Required and not granted (a granted scope covers the scopes it implies). */
  missing: string[];
  /** Why the scopes were not checked; null when they were. */
  reason: string | null;
  /** What the user should know: missing scopes, a refused token, an unreachable upstream. */
  warnings: string[];
}

export interface ScopeCheckOptions {
  /** Operator-set upstream base URLs by type name (MINIMCP_UPSTREAM_OVERRIDES). */
  upstreamOverrides: Readonly<Record<string, string>>;
  /** How long the upstream may take; 0: do not ask. */
  timeoutMs: number;
  logger: Logger;
}

const GITHUB_API_URL = 'https://api.github.com';

/**
 * GitHub's scope hierarchy (docs.github.com, "Scopes for OAuth apps"): a token
 * with the parent scope has each child scope too.
 */
const GITHUB_IMPLIED: Readonly<Record<string, readonly string[]>> = {
  repo: ['repo:status', 'repo_deployment', 'public_repo', 'repo:invite', 'security_events'],
  'admin:repo_hook': ['write:repo_hook', 'read:repo_hook'],
  'write:repo_hook': ['read:repo_hook'],
  'admin:org': ['write:org', 'read:org'],
  'write:org': ['read:org'],
  'admin:public_key': ['write:public_key', 'read:public_key'],
  'write:public_key': ['read:public_key'],
  user: ['read:user', 'user:email', 'user:follow'],
  'write:packages': ['read:packages'],
  'admin:gpg_key': ['write:gpg_key', 'read:gpg_key'],
  'write:gpg_key': ['read:gpg_key'],
  'admin:ssh_signing_key': ['write:ssh_signing_key', 'read:ssh_signing_key'],
  'write:ssh_signing_key': ['read:ssh_signing_key'],
  project: ['read:project'],
  'write:discussion': ['read:discussion'],
  'admin:enterprise': ['manage_runners:enterprise', 'manage_billing:enterprise', 'read:enterprise'],
  'manage_billing:enterprise': ['read:enterprise'],
};

/** Why the built-in types other than github are not checked. */
const UNCHECKED_REASONS: Readonly<Record<string, string>> = {
  gmail:
    'not checked: a gmail key may be a refresh-token JSON, whose scopes Google reports only after a token exchange MiniMCP does not make when storing it',
  figma: "not checked: Figma's API does not report the scopes of a personal access token",
};

type Checker = (
  key: string,
  required: string[],
  options: ScopeCheckOptions & { baseUrl: string },
) => Promise<ScopeCheck>;

const CHECKERS: Readonly<Record<string, { defaultUrl: string; check: Checker }>> = {
  github: { defaultUrl: GITHUB_API_URL, check: checkGithubScopes },
};

function unchecked(required: string[], reason: string, warnings: string[] = []): ScopeCheck {
  return { checked: false, required, granted: null, missing: [], reason, warnings };
}

/** The scope check of a key for a type; never throws for the upstream's sake. */
export async function checkKeyScopes(
  type: { name: string; required_scopes: readonly string[] | null },
  key: string,
  options: ScopeCheckOptions,
): Promise<ScopeCheck> {
  const required = [...(type.required_scopes ?? [])];
  if (required.length === 0)
    return unchecked(required, `not checked: type ${type.name} lists no required scopes`);
  const checker = CHECKERS[type.name];
  if (!checker)
    return unchecked(
      required,
      UNCHECKED_REASONS[type.name] ??
        `not checked: MiniMCP cannot ask the upstream of type ${type.name} for a key's scopes`,
    );
  if (options.timeoutMs === 0)
    return unchecked(required, 'not checked: the operator turned the scope check off');
  const baseUrl = (options.upstreamOverrides[type.name] ?? checker.defaultUrl).replace(/\/+$/, '');
  return checker.check(key, required, { ...options, baseUrl });
}

/** The required scopes a granted list does not cover, directly or through GitHub's hierarchy. */
export function missingGithubScopes(required: readonly string[], granted: readonly string[]) {
  const covered = new Set<string>();
  for (const scope of granted) {
    covered.add(scope);
    for (const implied of GITHUB_IMPLIED[scope] ?? []) covered.add(implied);
  }
  return required.filter((scope) => !covered.has(scope));
}

async function checkGithubScopes(
  key: string,
  required: string[],
  options: ScopeCheckOptions & { baseUrl: string },
): Promise<ScopeCheck> {
  let response: Response;
  try {
    response = await fetch(`${options.baseUrl}/user`, {
      headers: {
        authorization: `Bearer ${key}`,
        accept: 'application/vnd.github+json',
        'user-agent': 'minimcp',
        'x-github-api-version': '2022-11-28',
      },
      signal: AbortSignal.timeout(options.timeoutMs),
    });
    // Only the headers matter; the body (the account) is not read.
    await response.body?.cancel();
  } catch (error) {
    const timedOut = (error as { name?: unknown }).name === 'TimeoutError';
    const cause = (error as { cause?: { code?: unknown } }).cause?.code;
    // The error names the host and the cause, never the key (it is in a header only).
    options.logger.warn(
      { err: error instanceof Error ? error.message : String(error), cause, timedOut },
      'the GitHub scope check could not reach GitHub',
    );
    const what = timedOut
      ? `did not answer within ${options.timeoutMs} ms`
      : 'could not be reached';
    const note = `GitHub (${options.baseUrl}) ${what}: the key is stored, its scopes are not checked`;
    return unchecked(required, `not checked: ${note}`, [note]);
  }
  if (response.status === 401) {
    const note =
      'GitHub refused this token (HTTP 401: revoked, expired or mistyped): it is stored, but instances will fail to call GitHub until you store a valid one';
    return unchecked(required, 'not checked: GitHub refused the token', [note]);
  }
  if (!response.ok) {
    const note = `GitHub answered HTTP ${response.status} to GET /user: the key is stored, its scopes are not checked`;
    return unchecked(required, `not checked: ${note}`, [note]);
  }
  const header = response.headers.get('x-oauth-scopes');
  if (header === null)
    return unchecked(
      required,
      'not checked: GitHub reports no scopes for fine-grained personal access tokens (their permissions are set per repository when the token is made; see github.com/settings/tokens)',
    );
  const granted = header
    .split(',')
    .map((scope) => scope.trim())
    .filter(Boolean);
  const missing = missingGithubScopes(required, granted);
  return {
    checked: true,
    required,
    granted,
    missing,
    reason: null,
    warnings: missing.map(
      (scope) =>
        `the token lacks the GitHub scope "${scope}" that type github needs (it has: ${granted.join(', ') || 'none'}): some tools will fail; make a token with it at github.com/settings/tokens`,
    ),
  };
}
