// The pool of OS user ids for children: each live child has its own, ids
// come back when released (not at once: round robin), survivors' ids stay taken.
import { describe, expect, it } from '@jest/globals';
import { createChildUsers } from '../../../../agent/child/child-users.js';

describe('child users', () => {
  it('hands out distinct ids until the range is used up, then none', () => {
    const users = createChildUsers({ start: 5000, end: 5002 });
    const ids = [users.acquire(), users.acquire(), users.acquire()];
    expect(ids).toEqual([5000, 5001, 5002]);
    expect(users.acquire()).toBeUndefined();
    expect(users.inUse).toBe(3);
    expect(users.range).toBe('5000-5002');
  });

  it('reuses a released id only after the others (round robin)', () => {
    const users = createChildUsers({ start: 5000, end: 5003 });
    const first = users.acquire()!;
    users.release(first);
    expect(users.acquire()).toBe(5001);
    expect(users.acquire()).toBe(5002);
    expect(users.acquire()).toBe(5003);
    expect(users.acquire()).toBe(5000);
    expect(users.acquire()).toBeUndefined();
  });

  it('never hands out the id of a child taken over from a previous agent', () => {
    const users = createChildUsers({ start: 5000, end: 5002 }, [5000, 4000]);
    users.claim(5002);
    users.claim(9999); // outside the range: ignored
    expect(users.inUse).toBe(2);
    expect(users.acquire()).toBe(5001);
    expect(users.acquire()).toBeUndefined();
    users.release(5000);
    expect(users.acquire()).toBe(5000);
  });
});
