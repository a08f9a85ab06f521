// How a type's MCP server is started: its own command, or a built-in script
// run by this Node. Shared by the instance runtime (every spawn) and the warm
// pool (which may only pre-start what a spawn would start identically).
import path from 'node:path';

/** The fields of an mcp_types row (or a runtime spec) that say how its server starts. */
export interface ServerLaunch {
  server_script: string | null;
  command: string | null;
  args: readonly string[];
  env_mapping: Readonly<Record<string, string>>;
}

/** The command line of a type's server; `label` names the type in the error. */
export function resolveCommand(
  launch: ServerLaunch,
  serversRoot: string,
  label: string,
): { command: string; args: string[] } {
  if (launch.command) return { command: launch.command, args: [...launch.args] };
  if (!launch.server_script) throw new Error(`type ${label} has neither a command nor a script`);
  return {
    command: process.execPath,
    args: [path.resolve(serversRoot, launch.server_script), ...launch.args],
  };
}

/**
 * Only a built-in script whose environment is ours alone can start before its
 * instance: a type's own command, or its env_mapping, needs a spawn with that
 * environment.
 */
export function isPoolable(launch: ServerLaunch): boolean {
  return (
    Boolean(launch.server_script) && !launch.command && Object.keys(launch.env_mapping).length === 0
  );
}
