// scrypt password hashes: self-describing, salted, verified in constant time.
import { describe, expect, it } from '@jest/globals';
import {
  DEFAULT_SCRYPT,
  hashPassword,
  verifyPassword,
} from '../../../../lambdas/control/passwords.js';

const CHEAP = { ln: 8, r: 8, p: 1 };

describe('password hashes', () => {
  it('carry the algorithm, parameters, salt and hash in one PHC-style string', async () => {
    const hash = await hashPassword('correct horse battery staple', CHEAP);
    expect(hash).toMatch(/^\$scrypt\$ln=8,r=8,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$/);
  });

  it('use the default parameters (OWASP scrypt N=2^15, r=8, p=3) unless told', async () => {
    const hash = await hashPassword('a password of some length');
    expect(hash.startsWith(`$scrypt$ln=${DEFAULT_SCRYPT.ln},r=8,p=3$`)).toBe(true);
    expect(await verifyPassword('a password of some length', hash)).toBe(true);
  });

  it('verify the right password and refuse a wrong one', async () => {
    const hash = await hashPassword('s3cret-passphrase', CHEAP);
    expect(await verifyPassword('s3cret-passphrase', hash)).toBe(true);
    expect(await verifyPassword('s3cret-passphrasf', hash)).toBe(false);
    expect(await verifyPassword('', hash)).toBe(false);
  });

  it('salt every hash: the same password hashes differently twice', async () => {
    const [a, b] = await Promise.all([
      hashPassword('same password', CHEAP),
      hashPassword('same password', CHEAP),
    ]);
    expect(a).not.toBe(b);
    expect(await verifyPassword('same password', a)).toBe(true);
    expect(await verifyPassword('same password', b)).toBe(true);
  });

  it('verify with the parameters stored in the hash, not the current defaults', async () => {
    const hash = await hashPassword('older cost', { ln: 9, r: 4, p: 2 });
    expect(await verifyPassword('older cost', hash)).toBe(true);
  });

  it('treat canonically equivalent Unicode spellings as the same password', async () => {
    const composed = 'caf\u00e9 au lait';
    const decomposed = 'cafe\u0301 au lait';
    const hash = await hashPassword(composed, CHEAP);
    expect(await verifyPassword(decomposed, hash)).toBe(true);
  });

  it('refuse hashes it cannot read, tampered hashes and absurd costs without throwing', async () => {
    const hash = await hashPassword('pw', CHEAP);
    const parts = hash.split('$');
    // ['', 'scrypt', 'ln=8,r=8,p=1', salt, hash]
    const hashPart = parts[4]!;
    const flipped = hashPart.startsWith('A') ? `B${hashPart.slice(1)}` : `A${hashPart.slice(1)}`;
    const tampered = [...parts.slice(0, 4), flipped].join('$');
    expect(await verifyPassword('pw', tampered)).toBe(false);
    expect(await verifyPassword('pw', 'not-a-real-hash')).toBe(false);
    expect(await verifyPassword('pw', hash.replace('ln=8', 'ln=40'))).toBe(false);
    expect(await verifyPassword('pw', '$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA')).toBe(false);
  });
});
