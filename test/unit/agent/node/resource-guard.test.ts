// Resource limits: parsing the type's limits, capping them by the settings,
// and judging samples (memory at once, CPU only when it stays high).
import { describe, expect, it } from '@jest/globals';
import { Settings } from '../../../../core/db/settings.js';
import {
  CPU_STRIKES,
  createResourceJudge,
  limitsFor,
  parseCpu,
  parseMemory,
} from '../../../../agent/node/resource-guard.js';

const settings = Settings.parse({ 'process.max_memory_mb': 512, 'process.max_cpu_percent': 50 });

describe('resource limits', () => {
  it('parses memory sizes the way operators write them', () => {
    expect(parseMemory('512m')).toBe(512 * 1024 * 1024);
    expect(parseMemory('1g')).toBe(1024 ** 3);
    expect(parseMemory('256Mi')).toBe(256 * 1024 * 1024);
    expect(parseMemory('1048576')).toBe(1048576);
    expect(parseMemory('lots')).toBeUndefined();
    expect(parseMemory(null)).toBeUndefined();
  });

  it('parses CPU as cores or percent of one core', () => {
    expect(parseCpu('0.5')).toBe(50);
    expect(parseCpu(2)).toBe(200);
    expect(parseCpu('75%')).toBe(75);
    expect(parseCpu('fast')).toBeUndefined();
  });

  it('takes the stricter of the type limits and the settings', () => {
    expect(limitsFor({ memory: '1g', cpu: '0.25' }, settings)).toEqual({
      memoryBytes: 512 * 1024 * 1024,
      cpuPercent: 25,
    });
    expect(limitsFor(null, settings)).toEqual({ memoryBytes: 512 * 1024 * 1024, cpuPercent: 50 });
  });

  it('kills at once over memory, and over CPU only after consecutive samples', () => {
    const judge = createResourceJudge(() => ({ memoryBytes: 100 * 1024 * 1024, cpuPercent: 50 }));
    expect(judge({ rssBytes: 50 * 1024 * 1024, cpuPercent: 90 })).toEqual({ ok: true });
    expect(judge({ rssBytes: 50 * 1024 * 1024, cpuPercent: 10 })).toEqual({ ok: true });
    for (let i = 1; i < CPU_STRIKES; i++)
      expect(judge({ rssBytes: 1, cpuPercent: 99 })).toEqual({ ok: true });
    expect(judge({ rssBytes: 1, cpuPercent: 99 })).toEqual({
      ok: false,
      limit: 'cpu',
      reason: expect.stringMatching(/CPU 99% stayed over the limit of 50%/),
    });
    expect(judge({ rssBytes: 200 * 1024 * 1024, cpuPercent: 0 })).toEqual({
      ok: false,
      limit: 'memory',
      reason: 'killed: memory 200 MB is over the limit of 100 MB',
    });
  });
});
