// Schemas of the Figma REST v1 responses the tools read.
import { z } from 'zod';

export interface FgNodeShape {
  id: string;
  name: string;
  type: string;
  characters?: string | null;
  absoluteBoundingBox?: { width: number; height: number } | null;
  children?: FgNodeShape[] | null;
}

/** A node of a Figma document, with its subtree as deep as the request asked for. */
export const FgNode: z.ZodType<FgNodeShape> = z.lazy(() =>
  z.object({
    id: z.string(),
    name: z.string(),
    type: z.string(),
    characters: z.string().nullish(),
    absoluteBoundingBox: z.object({ width: z.number(), height: z.number() }).nullish(),
    children: z.array(FgNode).nullish(),
  }),
);

export const FgFile = z.object({
  name: z.string(),
  role: z.string().nullish(),
  lastModified: z.string(),
  editorType: z.string().nullish(),
  thumbnailUrl: z.string().nullish(),
  version: z.string(),
  document: FgNode,
  components: z
    .record(
      z.string(),
      z.object({ key: z.string(), name: z.string(), description: z.string().nullish() }),
    )
    .nullish(),
  styles: z
    .record(z.string(), z.object({ key: z.string(), name: z.string(), styleType: z.string() }))
    .nullish(),
});

export const FgFileNodes = z.object({
  name: z.string(),
  lastModified: z.string(),
  version: z.string(),
  nodes: z.record(z.string(), z.object({ document: FgNode }).nullable()),
});

export const FgImages = z.object({
  err: z.string().nullish(),
  images: z.record(z.string(), z.string().nullable()),
});

export const FgComment = z.object({
  id: z.string(),
  parent_id: z.string().nullish(),
  message: z.string(),
  user: z.object({ handle: z.string() }).nullish(),
  created_at: z.string(),
  resolved_at: z.string().nullish(),
  client_meta: z.object({ node_id: z.string().nullish() }).loose().nullish(),
});

export const FgComments = z.object({ comments: z.array(FgComment) });

const stringId = z.union([z.string(), z.number()]).transform(String);

export const FgTeamProjects = z.object({
  name: z.string().nullish(),
  projects: z.array(z.object({ id: stringId, name: z.string() })),
});

export const FgProjectFiles = z.object({
  name: z.string().nullish(),
  files: z.array(
    z.object({
      key: z.string(),
      name: z.string(),
      thumbnail_url: z.string().nullish(),
      last_modified: z.string().nullish(),
    }),
  ),
});

const FgPublished = z.object({
  key: z.string(),
  node_id: z.string(),
  name: z.string(),
  description: z.string().nullish(),
  thumbnail_url: z.string().nullish(),
  updated_at: z.string().nullish(),
});

export const FgComponents = z.object({
  meta: z.object({
    components: z.array(
      FgPublished.extend({
        containing_frame: z
          .object({ name: z.string().nullish(), pageName: z.string().nullish() })
          .nullish(),
      }),
    ),
  }),
});

export const FgStyles = z.object({
  meta: z.object({ styles: z.array(FgPublished.extend({ style_type: z.string() })) }),
});

/** Figma's error bodies: `{ status, err }` on most endpoints, `{ error, status, message }` on others. */
export const FgErrorBody = z.object({
  err: z.string().nullish(),
  message: z.string().nullish(),
});
