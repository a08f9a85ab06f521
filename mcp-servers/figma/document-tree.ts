// Trims a Figma document tree to what a model can use: id, name, type, size and
// text per node, to a depth and a node budget spent breadth-first, so every page
// and top-level frame shows before any deep detail.
import { z } from 'zod';
import type { FgNodeShape } from './upstream.js';

const MAX_TEXT_CHARS = 200;

export interface TrimmedNode {
  id: string;
  name: string;
  type: string;
  /** Children in the file; more than `children` holds when the tree was trimmed. */
  child_count: number;
  width?: number;
  height?: number;
  text?: string;
  children?: TrimmedNode[];
}

export const TrimmedNodeSchema: z.ZodType<TrimmedNode> = z.lazy(() =>
  z.object({
    id: z.string(),
    name: z.string(),
    type: z.string(),
    child_count: z.number().int(),
    width: z.number().optional(),
    height: z.number().optional(),
    text: z.string().optional(),
    children: z.array(TrimmedNodeSchema).optional(),
  }),
);

export interface TrimmedTree {
  root: TrimmedNode;
  node_count: number;
  omitted_nodes: number;
}

/** `maxDepth` counts from the root (0): 1 shows its children, 2 their children too. */
export function trimTree(source: FgNodeShape, maxDepth: number, maxNodes: number): TrimmedTree {
  const root = summarize(source);
  let nodeCount = 1;
  let omitted = 0;
  const queue: { source: FgNodeShape; out: TrimmedNode; depth: number }[] = [
    { source, out: root, depth: 0 },
  ];
  for (let i = 0; i < queue.length; i++) {
    const { source: node, out, depth } = queue[i] as (typeof queue)[number];
    const children = node.children ?? [];
    if (children.length === 0) continue;
    if (depth >= maxDepth) {
      omitted += countDescendants(node);
      continue;
    }
    out.children = [];
    for (const child of children) {
      if (nodeCount >= maxNodes) {
        omitted += 1 + countDescendants(child);
        continue;
      }
      const childOut = summarize(child);
      out.children.push(childOut);
      nodeCount++;
      queue.push({ source: child, out: childOut, depth: depth + 1 });
    }
  }
  return { root, node_count: nodeCount, omitted_nodes: omitted };
}

function summarize(node: FgNodeShape): TrimmedNode {
  const out: TrimmedNode = {
    id: node.id,
    name: node.name,
    type: node.type,
    child_count: node.children?.length ?? 0,
  };
  if (node.absoluteBoundingBox) {
    out.width = node.absoluteBoundingBox.width;
    out.height = node.absoluteBoundingBox.height;
  }
  if (node.characters != null)
    out.text =
      node.characters.length > MAX_TEXT_CHARS
        ? `${node.characters.slice(0, MAX_TEXT_CHARS)}…`
        : node.characters;
  return out;
}

function countDescendants(node: FgNodeShape): number {
  return (node.children ?? []).reduce((n, child) => n + 1 + countDescendants(child), 0);
}

export function omittedNote(omitted: number): string | undefined {
  return omitted > 0
    ? `${omitted} deeper or further node(s) omitted; raise depth or max_nodes, or read a subtree with get_file_nodes.`
    : undefined;
}
