// The owner of everything a benchmark run starts: steps registered as things
// start, run last-first when the run ends, fails or is interrupted, each one
// bounded in time so a stuck step cannot keep the others from running.

export interface Cleanup {
  /** Registers a step; returns a function that runs it now (once) and unregisters it. */
  defer(label: string, step: () => Promise<void> | void): () => Promise<void>;
  /** Runs every registered step, newest first; never throws. */
  runAll(): Promise<string[]>;
}

const STEP_TIMEOUT_MS = 90_000;

export function createCleanup(): Cleanup {
  const steps: { label: string; step: () => Promise<void> | void; done: boolean }[] = [];

  const runStep = async (entry: (typeof steps)[number]): Promise<string | undefined> => {
    if (entry.done) return undefined;
    entry.done = true;
    const index = steps.indexOf(entry);
    if (index !== -1) steps.splice(index, 1);
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        Promise.resolve().then(entry.step),
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`did not finish within ${STEP_TIMEOUT_MS} ms`)),
            STEP_TIMEOUT_MS,
          );
        }),
      ]);
      return undefined;
    } catch (error) {
      return `${entry.label}: ${error instanceof Error ? error.message : String(error)}`;
    } finally {
      clearTimeout(timer);
    }
  };

  return {
    defer(label, step) {
      const entry = { label, step, done: false };
      steps.push(entry);
      return async () => {
        const failure = await runStep(entry);
        if (failure) throw new Error(failure);
      };
    },
    async runAll() {
      const failures: string[] = [];
      while (steps.length > 0) {
        const failure = await runStep(steps[steps.length - 1]!);
        if (failure) failures.push(failure);
      }
      return failures;
    },
  };
}
