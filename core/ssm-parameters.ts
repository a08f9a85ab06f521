// Reads configuration from SSM Parameter Store: every parameter under a path,
// SecureStrings decrypted, keyed by its name relative to the path.
import { GetParametersByPathCommand, type SSMClient } from '@aws-sdk/client-ssm';

/** `/minimcp/prod/` and `minimcp/prod` both mean `/minimcp/prod`. */
function normalizePath(path: string): string {
  const trimmed = path.trim().replace(/\/+$/, '');
  return trimmed.startsWith('/') ? trimmed : `/${trimmed}`;
}

/**
 * `{ 'admin-token': '...', 'db/url': '...' }` for `/minimcp/prod/admin-token`
 * and `/minimcp/prod/db/url` under the path `/minimcp/prod`.
 */
export async function loadParametersByPath(options: {
  ssm: SSMClient;
  path: string;
}): Promise<Record<string, string>> {
  const path = normalizePath(options.path);
  const prefix = path === '/' ? '/' : `${path}/`;
  const parameters: Record<string, string> = {};
  let nextToken: string | undefined;
  do {
    let page;
    try {
      page = await options.ssm.send(
        new GetParametersByPathCommand({
          Path: path,
          Recursive: true,
          WithDecryption: true,
          ...(nextToken ? { NextToken: nextToken } : {}),
        }),
      );
    } catch (error) {
      const name = (error as { name?: unknown } | null)?.name;
      throw new Error(
        `cannot read SSM parameters under ${path} (${typeof name === 'string' ? name : 'unknown error'}); check the path and the role's ssm:GetParametersByPath and kms:Decrypt permissions`,
        { cause: error },
      );
    }
    for (const parameter of page.Parameters ?? []) {
      if (parameter.Name === undefined || parameter.Value === undefined) continue;
      if (!parameter.Name.startsWith(prefix)) continue;
      parameters[parameter.Name.slice(prefix.length)] = parameter.Value;
    }
    nextToken = page.NextToken;
  } while (nextToken);
  return parameters;
}
