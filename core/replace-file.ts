// Replacing a small file so that no reader ever sees half of it: written
// beside it (`<file>.tmp`), then renamed over it (rename is atomic within a
// file system). A crash leaves at most the .tmp file, never a torn original.
import { chownSync, renameSync, writeFileSync } from 'node:fs';

export function replaceFileSync(
  file: string,
  content: string,
  options: { mode?: number; owner?: { uid: number; gid: number } } = {},
): void {
  const staging = `${file}.tmp`;
  writeFileSync(staging, content, options.mode === undefined ? {} : { mode: options.mode });
  if (options.owner) chownSync(staging, options.owner.uid, options.owner.gid);
  renameSync(staging, file);
}
