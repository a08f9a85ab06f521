// The environment an instance's MCP server starts with: its merged config,
// its id, its key (also through the type's env mapping) and an operator's upstream URL.
import type { RuntimeSpecRow } from '../../core/db/instances.js';

export function childEnvironment(
  spec: RuntimeSpecRow,
  key: string | undefined,
  upstreamOverrides: Readonly<Record<string, string>>,
): Record<string, string> {
  const env: Record<string, string> = {
    MINIMCP_CONFIG: JSON.stringify({ ...spec.config_template, ...(spec.config ?? {}) }),
    MINIMCP_INSTANCE_ID: spec.id,
  };
  if (key !== undefined) env.MINIMCP_API_KEY = key;
  const upstream = upstreamOverrides[spec.type_name];
  if (upstream) env.MINIMCP_UPSTREAM_URL = upstream;
  for (const [name, template] of Object.entries(spec.env_mapping)) {
    env[name] = template.replaceAll('{{key}}', key ?? '');
  }
  return env;
}
