// What a started agent must undo, in reverse order of setup (agent/agent.ts
// adds a step after each part it starts).
import type { Logger } from '../core/logger.js';

/**
 * What a started agent must undo, in reverse order of setup. A step that
 * fails is logged with its name and the rest still run.
 */
export interface Teardown {
  add(step: string, undo: () => Promise<void> | void): void;
  run(): Promise<void>;
}

export function createTeardown(log: Logger): Teardown {
  const steps: Array<{ step: string; undo: () => Promise<void> | void }> = [];
  return {
    add: (step, undo) => void steps.push({ step, undo }),
    async run() {
      for (const { step, undo } of steps.splice(0).reverse()) {
        try {
          await undo();
        } catch (error) {
          log.warn({ err: String(error), step }, 'agent stop step failed');
        }
      }
    },
  };
}
