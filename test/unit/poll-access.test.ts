import { describe, expect, it } from 'vitest';
import { assertCanReadPoll, assertCanSeeResults, isPollManager, type Caller } from '../../src/domain/poll-access.js';
import { thrown } from '../helpers/errors.js';
import { callerOf, pollFacts } from '../helpers/factories.js';

const CREATOR = callerOf({ userId: 1 });
const ADMIN = callerOf({ userId: 99, isAdmin: true });
const STRANGER = callerOf({ userId: 2 });
const KEY = 'k3y-k3y-k3y-k3y-k3y-k3y-';

const readRefusal = (facts: Parameters<typeof pollFacts>[0], caller: Caller | null, key?: string) =>
  thrown(() => assertCanReadPoll(pollFacts(facts), caller, key));

describe('assertCanReadPoll', () => {
  it('lets anyone read a PUBLIC poll, open or closed, signed in or not', () => {
    for (const status of ['ACTIVE', 'CLOSED'] as const) {
      for (const caller of [null, STRANGER, CREATOR, ADMIN]) {
        expect(() => assertCanReadPoll(pollFacts({ status }), caller, undefined)).not.toThrow();
      }
    }
  });

  it('hides a DRAFT from everyone but its creator and admins, as POLL_NOT_FOUND, whatever its visibility or key', () => {
    for (const visibility of ['PUBLIC', 'PRIVATE', 'ORGANIZATION'] as const) {
      const facts = { status: 'DRAFT' as const, visibility, access_key: KEY, org_id: 7 };
      expect(readRefusal(facts, null, KEY), visibility).toMatchObject({ code: 'POLL_NOT_FOUND' });
      expect(readRefusal(facts, callerOf({ orgId: 7 }), KEY), visibility).toMatchObject({ code: 'POLL_NOT_FOUND' });
      expect(() => assertCanReadPoll(pollFacts(facts), CREATOR, undefined)).not.toThrow();
      expect(() => assertCanReadPoll(pollFacts(facts), ADMIN, undefined)).not.toThrow();
    }
  });

  it('answers a PRIVATE poll without its exact key as POLL_NOT_FOUND, like an unused id', () => {
    const facts = { visibility: 'PRIVATE' as const, access_key: KEY };
    for (const key of [undefined, '', 'wrong', KEY.slice(0, -1), `${KEY}x`, KEY.toUpperCase()]) {
      expect(readRefusal(facts, null, key), String(key)).toMatchObject({ code: 'POLL_NOT_FOUND' });
      expect(readRefusal(facts, STRANGER, key), String(key)).toMatchObject({ code: 'POLL_NOT_FOUND' });
    }
    expect(() => assertCanReadPoll(pollFacts(facts), null, KEY)).not.toThrow();
    expect(() => assertCanReadPoll(pollFacts(facts), STRANGER, KEY)).not.toThrow();
  });

  it('lets the creator and admins read a PRIVATE poll without the key', () => {
    const facts = pollFacts({ visibility: 'PRIVATE', access_key: KEY });
    expect(() => assertCanReadPoll(facts, CREATOR, undefined)).not.toThrow();
    expect(() => assertCanReadPoll(facts, ADMIN, undefined)).not.toThrow();
  });

  it('opens no PRIVATE poll that has no key stored, whatever key is sent', () => {
    for (const key of [undefined, '', 'null', 'anything']) {
      expect(readRefusal({ visibility: 'PRIVATE', access_key: null }, null, key), String(key)).toMatchObject({ code: 'POLL_NOT_FOUND' });
    }
  });

  it('asks an anonymous caller of an ORGANIZATION poll to sign in, and refuses members of other organizations', () => {
    const facts = { visibility: 'ORGANIZATION' as const, org_id: 7 };
    expect(readRefusal(facts, null)).toMatchObject({ code: 'AUTH_REQUIRED' });
    expect(readRefusal(facts, callerOf({ orgId: null }))).toMatchObject({ code: 'FORBIDDEN' });
    expect(readRefusal(facts, callerOf({ orgId: 8 }))).toMatchObject({ code: 'FORBIDDEN' });
    expect(() => assertCanReadPoll(pollFacts(facts), callerOf({ orgId: 7 }), undefined)).not.toThrow();
    expect(() => assertCanReadPoll(pollFacts(facts), CREATOR, undefined)).not.toThrow();
    expect(() => assertCanReadPoll(pollFacts(facts), ADMIN, undefined)).not.toThrow();
  });

  it('never treats "no organization" as an organization: a caller without one is refused from a poll without one', () => {
    expect(readRefusal({ visibility: 'ORGANIZATION', org_id: null }, callerOf({ orgId: null }))).toMatchObject({ code: 'FORBIDDEN' });
  });
});

describe('assertCanSeeResults', () => {
  it('shows results to anyone when the poll shows them before the close', () => {
    for (const caller of [null, STRANGER, CREATOR, ADMIN]) {
      expect(() => assertCanSeeResults(pollFacts({ show_results_before_close: true }), caller)).not.toThrow();
    }
  });

  it('hides results until the close from everyone but the creator, admins included, as RESULTS_HIDDEN', () => {
    for (const status of ['DRAFT', 'ACTIVE'] as const) {
      const facts = pollFacts({ status, show_results_before_close: false });
      for (const caller of [null, STRANGER, ADMIN]) {
        expect(
          thrown(() => assertCanSeeResults(facts, caller)),
          `${status} ${caller?.userId}`,
        ).toMatchObject({ code: 'RESULTS_HIDDEN' });
      }
      expect(() => assertCanSeeResults(facts, CREATOR)).not.toThrow();
    }
  });

  it('shows hidden results to everyone once the poll is CLOSED', () => {
    const facts = pollFacts({ status: 'CLOSED', show_results_before_close: false });
    for (const caller of [null, STRANGER, CREATOR, ADMIN]) expect(() => assertCanSeeResults(facts, caller)).not.toThrow();
  });
});

describe('isPollManager', () => {
  it("is the creator or an admin, nobody else: not an anonymous caller, not a member of the poll's organization", () => {
    const facts = pollFacts({ visibility: 'ORGANIZATION', org_id: 7 });
    expect(isPollManager(facts, CREATOR)).toBe(true);
    expect(isPollManager(facts, ADMIN)).toBe(true);
    expect(isPollManager(facts, null)).toBe(false);
    expect(isPollManager(facts, STRANGER)).toBe(false);
    expect(isPollManager(facts, callerOf({ orgId: 7 }))).toBe(false);
  });
});
