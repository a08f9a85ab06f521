// The shape of one benchmark module: a name for `npm run bench -- <name>`, and
// a run that fills in its report as it goes (so a failure keeps what was measured).
import type { Figure, Table, Target } from './results.js';
import type { BenchContext } from './stack.js';

export interface Report {
  method: string[];
  tables: Table[];
  figures: Record<string, Figure>;
  targets: Target[];
  notes: string[];
}

export interface Benchmark {
  name: string;
  title: string;
  run(ctx: BenchContext, report: Report): Promise<void>;
}

export function emptyReport(): Report {
  return { method: [], tables: [], figures: {}, targets: [], notes: [] };
}
