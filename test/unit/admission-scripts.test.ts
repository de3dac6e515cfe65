import { describe, expect, it } from 'vitest';
import {
  ADMIT_KEY_COUNT,
  ADMIT_VOTE,
  decodeAdmit,
  decodeWatch,
  encodeAdmit,
  encodeWatch,
  MAX_PREFIXES,
  WATCH_KEY_COUNT,
  WATCH_PREFIXES,
  type AdmitArgs,
} from '../../src/api/services/admission-scripts.js';
import { admitArgs, admitKeys } from '../helpers/factories.js';

/**
 * `local a, b = ARGV[1], tonumber(ARGV[2])` lines of a script: the local name each ARGV
 * position is read into, and whether the script reads it as a flag (`== '1'`).
 */
function argvOf(lua: string): Map<number, { name: string; flag: boolean }> {
  const out = new Map<number, { name: string; flag: boolean }>();
  for (const m of lua.matchAll(/^local ([\w, ]+) = (.*ARGV\[.*)$/gm)) {
    const names = m[1].split(',').map((s) => s.trim());
    const values = m[2].split(',').map((s) => s.trim());
    expect(values, m[0]).toHaveLength(names.length);
    names.forEach((name, i) => {
      const at = /ARGV\[(\d+)\]/.exec(values[i]);
      if (at) out.set(Number(at[1]), { name, flag: values[i].endsWith("== '1'") });
    });
  }
  return out;
}
const highestIndex = (lua: string, of: 'KEYS' | 'ARGV') => Math.max(...[...lua.matchAll(new RegExp(`${of}\\[(\\d+)\\]`, 'g'))].map((m) => Number(m[1])));

describe('encodeAdmit', () => {
  it('puts the keys first, in script order, and pads the unused prefix slots with the claim key', () => {
    const keys = admitKeys(1);
    const encoded = encodeAdmit(keys, admitArgs());
    expect(encoded.slice(0, ADMIT_KEY_COUNT)).toEqual([
      keys.claim,
      keys.pending,
      keys.closed,
      keys.ipVotes,
      keys.viewToken,
      '{p3}:win:0',
      '{p3}:flag:0',
      keys.claim,
      keys.claim,
    ]);
    expect(encodeAdmit(admitKeys(2), admitArgs()).slice(5, ADMIT_KEY_COUNT)).toEqual(['{p3}:win:0', '{p3}:flag:0', '{p3}:win:1', '{p3}:flag:1']);
    expect(encodeAdmit(admitKeys(0), admitArgs()).slice(5, ADMIT_KEY_COUNT)).toEqual(Array(2 * MAX_PREFIXES).fill(keys.claim));
  });

  it('has a fixed key count, the one the script reads up to (the command is defined with it)', () => {
    expect(ADMIT_KEY_COUNT).toBe(5 + 2 * MAX_PREFIXES);
    expect(highestIndex(ADMIT_VOTE, 'KEYS')).toBe(5);
    // KEYS[4 + 2 * i] and KEYS[5 + 2 * i] for i up to the prefix count: at most 5 + 2 * MAX_PREFIXES.
    expect(ADMIT_VOTE).toMatch(/KEYS\[4 \+ 2 \* i\]/);
    expect(ADMIT_VOTE).toMatch(/KEYS\[5 \+ 2 \* i\]/);
    for (const n of [0, 1, 2]) expect(encodeAdmit(admitKeys(n), admitArgs()).length).toBe(ADMIT_KEY_COUNT + highestIndex(ADMIT_VOTE, 'ARGV'));
  });

  it('passes every argument at the position the script reads it from, flags as "1" or "0"', () => {
    // The script's local names for the fields of AdmitArgs.
    const FIELD: Record<string, keyof AdmitArgs | 'prefixCount'> = {
      voteId: 'voteId',
      allowChange: 'allowChange',
      pendingMs: 'pendingTtlMs',
      windowMs: 'windowMs',
      prefixLimit: 'prefixLimit',
      solved: 'captchaSolved',
      captchaIfFlagged: 'captchaIfFlagged',
      ipSoft: 'ipSoft',
      ipHard: 'ipHard',
      ipWindowMs: 'ipWindowMs',
      endMs: 'endMs',
      tokenMs: 'viewTokenTtlMs',
      tokenRequired: 'viewTokenRequired',
      prefixCount: 'prefixCount',
    };
    const argv = argvOf(ADMIT_VOTE);
    expect(argv.size).toBe(highestIndex(ADMIT_VOTE, 'ARGV'));
    expect(
      [...argv.values()].map((a) => FIELD[a.name]).filter((f) => f === undefined),
      'every ARGV the script reads has a field',
    ).toEqual([]);
    expect(new Set(Object.values(FIELD)).size).toBe(Object.keys(FIELD).length);

    // Every flag on, then every flag off: each must land where the script reads it, as the script reads it.
    for (const on of [true, false]) {
      const args = admitArgs({
        allowChange: on,
        captchaSolved: on,
        captchaIfFlagged: on,
        viewTokenRequired: on,
        endMs: 1_800_000_000_000,
        viewTokenTtlMs: 12_345,
      });
      const keys = admitKeys(2);
      const encoded = encodeAdmit(keys, args);
      for (const [i, { name, flag }] of argv) {
        const field = FIELD[name];
        const value = field === 'prefixCount' ? keys.prefixes.length : args[field];
        expect(encoded[ADMIT_KEY_COUNT + i - 1], `ARGV[${i}] ${name}`).toEqual(flag ? (value ? '1' : '0') : value);
        expect(typeof value === 'boolean', `${name} is a flag exactly where the script reads "1"`).toBe(flag);
      }
    }
  });

  it('refuses more prefixes than the script has slots for', () => {
    expect(() => encodeAdmit(admitKeys(MAX_PREFIXES + 1), admitArgs())).toThrow(/at most 2/);
  });
});

describe('decodeAdmit', () => {
  const SEQ = '1764324000123456'; // server µs: beyond 2^53 one day, kept as the string Redis sent

  it('reads a new or changed vote: seq, vote id, flags, the server time and the crossed windows', () => {
    expect(decodeAdmit([0, SEQ, 'v1', 0, 1764324000123, 1, ''])).toEqual({
      outcome: 'new',
      seq: SEQ,
      voteId: 'v1',
      flaggedBefore: false,
      nowMs: 1764324000123,
      viewTokenFresh: true,
      crossed: [],
      windowVoteIds: [],
    });
    expect(decodeAdmit([2, SEQ, 'v0', 1, 1764324000123, 0, '0,1', 'v0', 'v7', 'v9'])).toEqual({
      outcome: 'changed',
      seq: SEQ,
      voteId: 'v0',
      flaggedBefore: true,
      nowMs: 1764324000123,
      viewTokenFresh: false,
      crossed: [0, 1],
      windowVoteIds: ['v0', 'v7', 'v9'],
    });
    expect(decodeAdmit([0, SEQ, 'v1', 0, 1, 0, '1', 'v1'])).toMatchObject({ crossed: [1], windowVoteIds: ['v1'] });
  });

  it('reads numbers sent as strings the same way', () => {
    expect(decodeAdmit(['0', SEQ, 'v1', '1', '1764324000123', '1', ''])).toMatchObject({
      outcome: 'new',
      flaggedBefore: true,
      nowMs: 1764324000123,
      viewTokenFresh: true,
    });
    expect(decodeAdmit(['4', '1500'])).toEqual({ outcome: 'pending', retryMs: 1500 });
  });

  it('reads a duplicate with the stored seq and vote id', () => {
    expect(decodeAdmit([1, SEQ, 'v-old'])).toEqual({ outcome: 'duplicate', seq: SEQ, voteId: 'v-old' });
  });

  it('reads the refusals, a TTL of a key already gone (PTTL -2, -1) as retry at once', () => {
    expect(decodeAdmit([3])).toEqual({ outcome: 'captcha_flagged' });
    expect(decodeAdmit([4, 2500])).toEqual({ outcome: 'pending', retryMs: 2500 });
    expect(decodeAdmit([4, -2])).toEqual({ outcome: 'pending', retryMs: 0 });
    expect(decodeAdmit([5])).toEqual({ outcome: 'closed' });
    expect(decodeAdmit([6])).toEqual({ outcome: 'expired' });
    expect(decodeAdmit([7, 3_599_000])).toEqual({ outcome: 'rate_limited', retryMs: 3_599_000 });
    expect(decodeAdmit([7, -1])).toEqual({ outcome: 'rate_limited', retryMs: 0 });
    expect(decodeAdmit([8])).toEqual({ outcome: 'captcha_step_up' });
    expect(decodeAdmit([9])).toEqual({ outcome: 'view_token' });
  });

  it('decodes every reply code the script can return, and throws on any other', () => {
    const codes = [...ADMIT_VOTE.matchAll(/return \{(\d+)/g)].map((m) => Number(m[1]));
    expect(ADMIT_VOTE).toMatch(/outcome, seq = 0,/);
    expect(ADMIT_VOTE).toMatch(/outcome, seq, voteId = 2,/);
    expect(codes.sort()).toEqual([1, 3, 4, 5, 6, 7, 8, 9]);
    for (const code of [0, 2, ...codes]) expect(() => decodeAdmit([code, SEQ, 'v', 0, 0, 0, ''])).not.toThrow();
    expect(() => decodeAdmit([10])).toThrow(/unexpected admission reply \[10\]/);
    expect(() => decodeAdmit([-1])).toThrow(/unexpected admission reply/);
  });
});

describe('encodeWatch', () => {
  const args = { voteId: 'v1', windowMs: 60_000, prefixLimit: 50, captchaIfFlagged: true };

  it('puts [window, flag] per prefix first, pads unused slots with the first window key, then the arguments', () => {
    expect(encodeWatch([['w0', 'f0']], args)).toEqual(['w0', 'f0', 'w0', 'w0', 'v1', 60_000, 50, 1, '1']);
    expect(
      encodeWatch(
        [
          ['w0', 'f0'],
          ['w1', 'f1'],
        ],
        { ...args, captchaIfFlagged: false },
      ),
    ).toEqual(['w0', 'f0', 'w1', 'f1', 'v1', 60_000, 50, 2, '0']);
  });

  it('matches the positions and the key count the script reads', () => {
    expect(WATCH_KEY_COUNT).toBe(2 * MAX_PREFIXES);
    expect(WATCH_PREFIXES).toMatch(/KEYS\[2 \* i - 1\], KEYS\[2 \* i\]/);
    const argv = argvOf(WATCH_PREFIXES);
    expect([...argv].map(([i, a]) => [i, a.name, a.flag])).toEqual([
      [1, 'voteId', false],
      [2, 'windowMs', false],
      [3, 'prefixLimit', false],
      [4, 'prefixCount', false],
      [5, 'captchaIfFlagged', true],
    ]);
    expect(encodeWatch([['w0', 'f0']], args)).toHaveLength(WATCH_KEY_COUNT + argv.size);
  });

  it('needs one to MAX_PREFIXES prefixes (the first key routes the command)', () => {
    expect(() => encodeWatch([], args)).toThrow(/1 to 2/);
    expect(() =>
      encodeWatch(
        [
          ['a', 'b'],
          ['c', 'd'],
          ['e', 'f'],
        ],
        args,
      ),
    ).toThrow(/1 to 2/);
  });
});

describe('decodeWatch', () => {
  it('reads a refusal for a flagged prefix, or what the windows said', () => {
    expect(decodeWatch([3])).toEqual({ outcome: 'captcha_flagged' });
    expect(decodeWatch([0, 0, ''])).toEqual({ outcome: 'watched', flaggedBefore: false, crossed: [], windowVoteIds: [] });
    expect(decodeWatch([0, 1, '0,1', 'v1', 'v2'])).toEqual({ outcome: 'watched', flaggedBefore: true, crossed: [0, 1], windowVoteIds: ['v1', 'v2'] });
    expect(WATCH_PREFIXES).toMatch(/return \{3\}/);
    expect(WATCH_PREFIXES).toMatch(/local out = \{0, flagged, table\.concat\(crossed, ','\)\}/);
  });
});
