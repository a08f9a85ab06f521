// The binding of a pre-spawned (warm) server: the agent starts it before any
// instance exists, with MINIMCP_BINDING_FD naming an inherited pipe. When an
// instance takes it, the agent writes one JSON object there — the environment
// a cold spawn would have had, the key included, and the instance's working
// directory — and closes the pipe. The key never sits in /proc/<pid>/environ.
// @see docs/decisions/0006-warm-pool.md
import { Socket } from 'node:net';
import { z } from 'zod';

const Binding = z.object({
  env: z.record(z.string(), z.string()),
  cwd: z.string().min(1),
});
export type Binding = z.infer<typeof Binding>;

/** An instance's environment is a few KiB; anything larger is not from the agent. */
const MAX_BINDING_BYTES = 1024 * 1024;

export type BindingResult =
  | { ok: true; value: Binding }
  /** The pipe closed with nothing written: the agent let this server go unused. */
  | { ok: true; value: undefined }
  | { ok: false; message: string };

/** Reads the binding from `fd` until the agent closes its end. */
export function readBinding(fd: number): Promise<BindingResult> {
  return new Promise((resolve) => {
    const socket = new Socket({ fd, readable: true, writable: false });
    const chunks: Buffer[] = [];
    let size = 0;
    const finish = (result: BindingResult): void => {
      socket.destroy();
      resolve(result);
    };
    socket.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BINDING_BYTES)
        finish({ ok: false, message: `the binding is over ${MAX_BINDING_BYTES} bytes` });
      else chunks.push(chunk);
    });
    socket.once('error', (error: NodeJS.ErrnoException) =>
      finish({ ok: false, message: `could not read the binding (${error.code ?? error.name})` }),
    );
    socket.once('end', () => {
      const text = Buffer.concat(chunks).toString('utf8').trim();
      if (text === '') return finish({ ok: true, value: undefined });
      let raw: unknown;
      try {
        raw = JSON.parse(text);
      } catch {
        // V8's message quotes the text, and the text holds the key: say only what failed.
        return finish({ ok: false, message: 'the binding is not valid JSON' });
      }
      const parsed = Binding.safeParse(raw);
      finish(
        parsed.success
          ? { ok: true, value: parsed.data }
          : { ok: false, message: `the binding is invalid: ${z.prettifyError(parsed.error)}` },
      );
    });
  });
}

/**
 * Makes the process look as a cold spawn for this instance would: its working
 * directory and HOME, and the instance's variables in `process.env` — all but
 * the key, which only the returned environment (read once by `readServerEnv`) holds.
 */
export function applyBinding(binding: Binding): NodeJS.ProcessEnv {
  process.chdir(binding.cwd);
  process.env.HOME = binding.cwd;
  delete process.env.MINIMCP_BINDING_FD;
  const { MINIMCP_API_KEY: apiKey, ...rest } = binding.env;
  Object.assign(process.env, rest);
  return apiKey === undefined ? { ...process.env } : { ...process.env, MINIMCP_API_KEY: apiKey };
}
