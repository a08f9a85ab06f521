// The command line's state in the user's config folder
// ($XDG_CONFIG_HOME/minimcp, else ~/.config/minimcp; folder 0700, files 0600):
// config.json holds the API URL and the API token `login` minted;
// instance-tokens.json the access tokens `create` and `rotate-token` were
// shown (the API shows them once), for `connect`.
import { chmod, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { CliError, EXIT } from './errors.js';

const LoginSchema = z.object({
  url: z.string(),
  token: z.string(),
  token_id: z.string().optional(),
  email: z.string().optional(),
});
export type StoredLogin = z.infer<typeof LoginSchema>;

const InstanceTokensSchema = z.record(
  z.string(),
  z.object({ token: z.string(), access_url: z.string(), saved_at: z.string() }),
);
type InstanceTokens = z.infer<typeof InstanceTokensSchema>;

export interface ConfigStore {
  readonly dir: string;
  readonly loginFile: string;
  readonly instanceTokensFile: string;
  readLogin(): Promise<StoredLogin | undefined>;
  writeLogin(login: StoredLogin): Promise<void>;
  saveInstanceToken(id: string, token: string, accessUrl: string): Promise<void>;
  instanceToken(id: string): Promise<string | undefined>;
  forgetInstanceToken(id: string): Promise<void>;
  /** Removes both files (logout). */
  clear(): Promise<void>;
}

/** $XDG_CONFIG_HOME/minimcp when set (and absolute), else ~/.config/minimcp. */
export function configDir(env: NodeJS.ProcessEnv, homeDir: string): string {
  const xdg = env.XDG_CONFIG_HOME;
  return path.join(xdg && path.isAbsolute(xdg) ? xdg : path.join(homeDir, '.config'), 'minimcp');
}

export function createConfigStore(dir: string): ConfigStore {
  const loginFile = path.join(dir, 'config.json');
  const instanceTokensFile = path.join(dir, 'instance-tokens.json');

  async function readTokens(): Promise<InstanceTokens> {
    return (await readJsonFile(instanceTokensFile, InstanceTokensSchema)) ?? {};
  }

  return {
    dir,
    loginFile,
    instanceTokensFile,
    readLogin: () => readJsonFile(loginFile, LoginSchema),
    writeLogin: (login) => writePrivateJson(dir, loginFile, login),
    async saveInstanceToken(id, token, accessUrl) {
      const tokens = await readTokens();
      tokens[id] = { token, access_url: accessUrl, saved_at: new Date().toISOString() };
      await writePrivateJson(dir, instanceTokensFile, tokens);
    },
    async instanceToken(id) {
      return (await readTokens())[id]?.token;
    },
    async forgetInstanceToken(id) {
      const tokens = await readTokens();
      if (!(id in tokens)) return;
      delete tokens[id];
      await writePrivateJson(dir, instanceTokensFile, tokens);
    },
    async clear() {
      await rm(loginFile, { force: true });
      await rm(instanceTokensFile, { force: true });
    },
  };
}

async function readJsonFile<S extends z.ZodType>(
  file: string,
  schema: S,
): Promise<z.infer<S> | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new CliError(`cannot read ${file}: ${(error as Error).message}`, EXIT.failed, {
      cause: error,
    });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new CliError(`${file} is not valid JSON (${(error as Error).message})`, EXIT.failed, {
      hint: 'remove it and run `minimcp login` again',
      cause: error,
    });
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    throw new CliError(`${file} is not a minimcp file: ${parsed.error.message}`, EXIT.failed, {
      hint: 'remove it and run `minimcp login` again',
    });
  }
  return parsed.data;
}

/** Written to a 0600 temporary file in the same folder, then renamed over the old one. */
async function writePrivateJson(dir: string, file: string, value: unknown): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const temporary = `${file}.${process.pid}.tmp`;
  try {
    await writeFile(temporary, JSON.stringify(value, null, 2) + '\n', { mode: 0o600 });
    // The mode of writeFile is masked by the umask and ignored for an existing file.
    await chmod(temporary, 0o600);
    await rename(temporary, file);
  } finally {
    await rm(temporary, { force: true });
  }
}
