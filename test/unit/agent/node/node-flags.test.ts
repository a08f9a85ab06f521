// The agent's Node flags are written in three places that cannot import a
// TypeScript constant (the systemd unit, package.json's script) plus the list
// the benchmarks use: they must not drift apart.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from '@jest/globals';
import { AGENT_ENVIRONMENT, AGENT_NODE_FLAGS } from '../../../../agent/node/node-flags.js';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..');
const unit = readFileSync(path.join(REPO_ROOT, 'infra/agent-bundle/minimcp-agent.service'), 'utf8');
const packageJson = JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as {
  scripts: Record<string, string>;
};

describe('AGENT_NODE_FLAGS', () => {
  it('are the flags of the systemd unit and of npm run agent', () => {
    const execStart = /^ExecStart=\S+ (.*) \S+\/dist\/agent\/main\.js$/m.exec(unit)?.[1];
    const script = /node (.*) dist\/agent\/main\.js$/.exec(packageJson.scripts.agent ?? '')?.[1];

    expect(AGENT_NODE_FLAGS.length).toBeGreaterThan(0);
    expect(execStart?.split(' ')).toEqual([...AGENT_NODE_FLAGS]);
    expect(script?.split(' ')).toEqual([...AGENT_NODE_FLAGS]);
  });

  it('come with the environment of the systemd unit and of npm run agent', () => {
    const entries = Object.entries(AGENT_ENVIRONMENT);

    expect(entries.length).toBeGreaterThan(0);
    for (const [name, value] of entries) {
      expect(unit).toMatch(new RegExp(`^Environment=${name}=${value}$`, 'm'));
      // `exec`: npm's shell hands its place to node, so a stop signal reaches the agent alone.
      expect(packageJson.scripts.agent).toContain(`${name}=${value} exec node `);
    }
  });
});
