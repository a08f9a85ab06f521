// The config store: where it lives, and that what it writes (an API token,
// instance access tokens) is readable by the user only, whatever the umask.
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { mkdtemp, rm, stat, writeFile, mkdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { configDir, createConfigStore } from '../../../../../infra/cli/minimcp/config-store.js';

let root: string;
let previousUmask: number;
beforeEach(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'minimcp-store-'));
  previousUmask = process.umask(0o000);
});
afterEach(async () => {
  process.umask(previousUmask);
  await rm(root, { recursive: true, force: true });
});

const modeOf = async (file: string) => (await stat(file)).mode & 0o777;

describe('the config store', () => {
  it('writes the login file 0600 in a 0700 folder, even under umask 000', async () => {
    const store = createConfigStore(path.join(root, 'minimcp'));
    await store.writeLogin({ url: 'http://127.0.0.1:8080', token: 'mmu_secret', token_id: 'id' });
    expect(await modeOf(store.loginFile)).toBe(0o600);
    expect(await modeOf(store.dir)).toBe(0o700);
    expect(await store.readLogin()).toEqual({
      url: 'http://127.0.0.1:8080',
      token: 'mmu_secret',
      token_id: 'id',
    });
  });

  it('makes a login file that was 0644 0600 when it rewrites it', async () => {
    const store = createConfigStore(path.join(root, 'minimcp'));
    await mkdir(store.dir, { recursive: true });
    await writeFile(store.loginFile, '{"url":"u","token":"t"}', { mode: 0o644 });
    await store.writeLogin({ url: 'u', token: 't2' });
    expect(await modeOf(store.loginFile)).toBe(0o600);
  });

  it('keeps instance tokens 0600 per id, forgets one, and clears everything on logout', async () => {
    const store = createConfigStore(path.join(root, 'minimcp'));
    await store.saveInstanceToken('a', 'mcp_a', 'http://h/a');
    await store.saveInstanceToken('b', 'mcp_b', 'http://h/b');
    expect(await modeOf(store.instanceTokensFile)).toBe(0o600);
    expect(await store.instanceToken('a')).toBe('mcp_a');
    await store.forgetInstanceToken('a');
    expect(await store.instanceToken('a')).toBeUndefined();
    expect(await store.instanceToken('b')).toBe('mcp_b');
    await store.writeLogin({ url: 'u', token: 't' });
    await store.clear();
    expect(await store.readLogin()).toBeUndefined();
    expect(await store.instanceToken('b')).toBeUndefined();
  });

  it('refuses a login file that is not JSON, naming it', async () => {
    const store = createConfigStore(path.join(root, 'minimcp'));
    await mkdir(store.dir, { recursive: true });
    await writeFile(store.loginFile, 'not json');
    await expect(store.readLogin()).rejects.toThrow(`${store.loginFile} is not valid JSON`);
  });

  it('lives in $XDG_CONFIG_HOME/minimcp, else ~/.config/minimcp', () => {
    expect(configDir({ XDG_CONFIG_HOME: '/xdg' }, '/home/ana')).toBe('/xdg/minimcp');
    expect(configDir({}, '/home/ana')).toBe('/home/ana/.config/minimcp');
    // The XDG spec: a relative path is invalid and ignored.
    expect(configDir({ XDG_CONFIG_HOME: 'rel' }, '/home/ana')).toBe('/home/ana/.config/minimcp');
  });
});
