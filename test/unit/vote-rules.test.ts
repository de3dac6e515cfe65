import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FLAG_REASONS } from '../../src/domain/flag-reasons.js';
import { CLAIM_MIN_MS, claimLifetimeMs, claimMayHaveLapsed, flagReasonsOf, votingWindowRefusal } from '../../src/domain/vote-rules.js';
import { pollFacts } from '../helpers/factories.js';

const MINUTE = 60_000;
const DAY = 86_400_000;
const NOW = Date.UTC(2026, 10, 28, 10, 0, 0);
const at = (ms: number) => new Date(NOW + ms);

describe('votingWindowRefusal', () => {
  it('takes votes on an ACTIVE poll without a window, or within it', () => {
    expect(votingWindowRefusal(pollFacts(), NOW)).toBeNull();
    expect(votingWindowRefusal(pollFacts({ start_time: at(-DAY), end_time: at(DAY) }), NOW)).toBeNull();
  });

  it('refuses a DRAFT as DRAFT, even past its end time', () => {
    expect(votingWindowRefusal(pollFacts({ status: 'DRAFT' }), NOW)).toBe('DRAFT');
    expect(votingWindowRefusal(pollFacts({ status: 'DRAFT', end_time: at(-1) }), NOW)).toBe('DRAFT');
  });

  it('is EXPIRED from the end time on (the end itself included), closed by then or not', () => {
    expect(votingWindowRefusal(pollFacts({ end_time: at(1) }), NOW)).toBeNull();
    expect(votingWindowRefusal(pollFacts({ end_time: at(0) }), NOW)).toBe('EXPIRED');
    expect(votingWindowRefusal(pollFacts({ end_time: at(-1) }), NOW)).toBe('EXPIRED');
    expect(votingWindowRefusal(pollFacts({ status: 'CLOSED', end_time: at(-1) }), NOW)).toBe('EXPIRED');
  });

  it('refuses a poll closed before its end as CLOSED', () => {
    expect(votingWindowRefusal(pollFacts({ status: 'CLOSED' }), NOW)).toBe('CLOSED');
    expect(votingWindowRefusal(pollFacts({ status: 'CLOSED', end_time: at(DAY) }), NOW)).toBe('CLOSED');
  });

  it('is NOT_STARTED before the start time, open from the start itself', () => {
    expect(votingWindowRefusal(pollFacts({ start_time: at(1) }), NOW)).toBe('NOT_STARTED');
    expect(votingWindowRefusal(pollFacts({ start_time: at(0) }), NOW)).toBeNull();
  });
});

describe('claimLifetimeMs', () => {
  it('keeps a claim at least CLAIM_MIN_MS (90 days), also for a poll without an end or one that has ended', () => {
    expect(CLAIM_MIN_MS).toBe(90 * DAY);
    expect(claimLifetimeMs(null, NOW)).toBe(CLAIM_MIN_MS);
    expect(claimLifetimeMs(at(-DAY), NOW)).toBe(CLAIM_MIN_MS);
    expect(claimLifetimeMs(at(83 * DAY), NOW)).toBe(CLAIM_MIN_MS);
  });

  it('keeps it a week past a later end', () => {
    expect(claimLifetimeMs(at(100 * DAY), NOW)).toBe(107 * DAY);
  });

  it('rounds up to whole minutes, so the claims of one batch share one TTL', () => {
    expect(claimLifetimeMs(at(100 * DAY + 1), NOW)).toBe(107 * DAY + MINUTE);
    expect(claimLifetimeMs(at(100 * DAY + 1), NOW + 59_998)).toBe(107 * DAY);
  });

  it('is always a whole number of minutes, at least CLAIM_MIN_MS, and covers a week past the end', () => {
    fc.assert(
      fc.property(fc.option(fc.integer({ min: -400 * DAY, max: 400 * DAY })), fc.integer({ min: 0, max: 10 * DAY }), (endOffset, nowOffset) => {
        const end = endOffset === null ? null : at(endOffset);
        const now = NOW + nowOffset;
        const ttl = claimLifetimeMs(end, now);
        expect(ttl % MINUTE).toBe(0);
        expect(ttl).toBeGreaterThanOrEqual(CLAIM_MIN_MS);
        if (end) expect(now + ttl).toBeGreaterThanOrEqual(end.getTime() + 7 * DAY);
        expect(ttl - Math.max(CLAIM_MIN_MS, end ? end.getTime() - now + 7 * DAY : 0)).toBeLessThan(MINUTE);
      }),
    );
  });
});

describe('claimMayHaveLapsed', () => {
  it('only for a poll open longer than a claim lasts, less a day', () => {
    const limit = CLAIM_MIN_MS - DAY;
    expect(claimMayHaveLapsed(at(0), NOW)).toBe(false);
    expect(claimMayHaveLapsed(at(-limit), NOW)).toBe(false);
    expect(claimMayHaveLapsed(at(-limit - 1), NOW)).toBe(true);
  });
});

describe('flagReasonsOf', () => {
  const base = { prefixFlagged: false, responseMs: 5000, minResponseMs: 1000 };
  it('holds nothing back without a reason', () => {
    expect(flagReasonsOf(base)).toEqual([]);
    expect(flagReasonsOf({ ...base, responseMs: null }), 'no view token, no time to judge').toEqual([]);
    expect(flagReasonsOf({ ...base, responseMs: 1000 }), 'exactly the minimum is fast enough').toEqual([]);
  });
  it('names a flagged prefix, a vote faster than the minimum, or both in that order', () => {
    expect(flagReasonsOf({ ...base, prefixFlagged: true })).toEqual([FLAG_REASONS.velocity]);
    expect(flagReasonsOf({ ...base, responseMs: 999 })).toEqual([FLAG_REASONS.tooFast]);
    expect(flagReasonsOf({ prefixFlagged: true, responseMs: 0, minResponseMs: 1000 })).toEqual(['IP_PREFIX_VELOCITY', 'TOO_FAST']);
  });
});
