// mcp_logs: the batched insert (one statement, as the log shipper writes) and
// the keyset-paginated, filtered read the API serves.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { listLogs, type NewLogEntry } from '../../../../core/db/logs.js';
import { createTestDatabase, type TestDatabase } from '../../../support/database.js';
import { makeInstance, makeUser } from '../../../support/fixtures.js';
import { insertLogs } from '../../../support/queries.js';

describe('log lines', () => {
  let db: TestDatabase;
  let userId: string;

  beforeAll(async () => {
    db = await createTestDatabase();
    userId = (await makeUser(db.owner)).id;
  });
  afterAll(() => db.drop());

  it('inserts thousands of log lines in one statement and pages through them newest first', async () => {
    const instance = await makeInstance(db.owner, { userId });
    const base = Date.now() - 10_000;
    const entries: NewLogEntry[] = Array.from({ length: 5000 }, (_, i) => ({
      instanceId: instance.id,
      timestamp: new Date(base + i),
      level: i % 100 === 0 ? 'error' : 'info',
      source: 'process',
      message: i % 1000 === 0 ? `needle ${i}` : `line ${i}`,
      metadata: { i },
    }));
    expect(await insertLogs(db.owner, entries)).toBe(5000);

    const page1 = await listLogs(db.owner, { instanceId: instance.id, limit: 3 });
    expect(page1.map((l) => l.message)).toEqual(['line 4999', 'line 4998', 'line 4997']);
    const last = page1[2]!;
    const page2 = await listLogs(db.owner, {
      instanceId: instance.id,
      limit: 2,
      before: { timestamp: last.timestamp, id: last.id },
    });
    expect(page2.map((l) => l.message)).toEqual(['line 4996', 'line 4995']);
    const errors = await listLogs(db.owner, {
      instanceId: instance.id,
      level: 'error',
      limit: 1000,
    });
    expect(errors).toHaveLength(50);
    const needles = await listLogs(db.owner, {
      instanceId: instance.id,
      text: 'NEEDLE',
      limit: 10,
    });
    expect(needles.map((l) => l.message)).toEqual([
      'needle 4000',
      'needle 3000',
      'needle 2000',
      'needle 1000',
      'needle 0',
    ]);
    const percent = await listLogs(db.owner, { instanceId: instance.id, text: '%', limit: 10 });
    expect(percent).toEqual([]);
  });
});
