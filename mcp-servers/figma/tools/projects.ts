// Figma tools to browse a team: list_team_projects and list_project_files.
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { z } from 'zod';
import { READS } from '../../shared/annotations.js';
import { path, type HttpClient } from '../../shared/http-client.js';
import { toolResult } from '../../shared/tool-result.js';
import { listWindowInput, listWindowOutput, window } from '../client.js';
import { FgProjectFiles, FgTeamProjects } from '../upstream.js';

const numericId = (what: string, where: string) =>
  z.string().regex(/^\d{1,30}$/, `${what} is a number, as in ${where}`);

export function registerProjectTools(server: McpServer, figma: HttpClient): void {
  server.registerTool(
    'list_team_projects',
    {
      title: "List a team's projects",
      description:
        "Lists the projects of a Figma team that the token can see. The team id is the number in the team's URL: figma.com/files/team/<team_id>/...",
      inputSchema: { team_id: numericId('team_id', 'figma.com/files/team/123456789') },
      outputSchema: {
        team_name: z.string().nullable(),
        projects: z.array(z.object({ id: z.string(), name: z.string() })),
      },
      annotations: READS,
    },
    async ({ team_id }, { signal }) => {
      const { data } = await figma.request(FgTeamProjects, {
        method: 'GET',
        path: path`/v1/teams/${team_id}/projects`,
        signal,
      });
      return toolResult({ team_name: data.name ?? null, projects: data.projects });
    },
  );

  server.registerTool(
    'list_project_files',
    {
      title: "List a project's files",
      description:
        'Lists the files of a Figma project (id from list_team_projects) with their keys, names and last change; pass a key to get_file.',
      inputSchema: {
        project_id: numericId('project_id', 'figma.com/files/project/123456'),
        ...listWindowInput,
      },
      outputSchema: {
        project_name: z.string().nullable(),
        files: z.array(
          z.object({
            key: z.string(),
            name: z.string(),
            last_modified: z.string().nullable(),
            thumbnail_url: z.string().nullable(),
          }),
        ),
        ...listWindowOutput,
      },
      annotations: READS,
    },
    async (args, { signal }) => {
      const { data } = await figma.request(FgProjectFiles, {
        method: 'GET',
        path: path`/v1/projects/${args.project_id}/files`,
        signal,
      });
      const files = data.files.map((f) => ({
        key: f.key,
        name: f.name,
        last_modified: f.last_modified ?? null,
        thumbnail_url: f.thumbnail_url ?? null,
      }));
      const page = window(files, args.offset, args.limit);
      return toolResult({
        project_name: data.name ?? null,
        files: page.items,
        total: page.total,
        next_offset: page.next_offset,
      });
    },
  );
}
