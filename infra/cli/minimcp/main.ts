#!/usr/bin/env node
// The `minimcp` command (package.json "bin"): wires the process's streams,
// environment and config folder into the program and exits with its code.
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { configDir, createConfigStore } from './config-store.js';
import type { CliContext } from './context.js';
import { runCli } from './program.js';

/** The package's version, from the nearest package.json (source or dist/ layout alike). */
function packageVersion(): string {
  for (let dir = import.meta.dirname; dir !== path.dirname(dir); dir = path.dirname(dir)) {
    const file = path.join(dir, 'package.json');
    if (existsSync(file))
      return (JSON.parse(readFileSync(file, 'utf8')) as { version?: string }).version ?? '0.0.0';
  }
  return '0.0.0';
}

const homeDir = os.homedir();
const ctx: CliContext = {
  env: process.env,
  stdin: process.stdin,
  stdout: process.stdout,
  stderr: process.stderr,
  platform: process.platform,
  homeDir,
  hostname: os.hostname(),
  store: createConfigStore(configDir(process.env, homeDir)),
  fetch: globalThis.fetch,
};

process.exitCode = await runCli(process.argv, ctx, packageVersion());
