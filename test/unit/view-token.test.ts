import { describe, expect, it } from 'vitest';
import { clientTagOf, createViewTokens } from '../../src/domain/view-token.js';

const SECRET = 'a-secret-of-at-least-16-chars';
const TTL = 60_000;
const T0 = Date.UTC(2026, 10, 28, 10, 0, 0);
const TAG = clientTagOf('192.0.2.1', 'Mozilla/5.0');
const tokens = createViewTokens(SECRET, TTL);

/** The token with part `i` (pollId, issuedAt, nonce, client, mac) replaced. */
const withPart = (token: string, i: number, value: string) =>
  token
    .split('.')
    .map((p, j) => (j === i ? value : p))
    .join('.');
/** A different character of the same alphabet at position `at` of a part. */
const flip = (s: string, at = 0) => s.slice(0, at) + (s[at] === 'A' ? 'B' : 'A') + s.slice(at + 1);

describe('clientTagOf', () => {
  it('is a short URL-safe tag, the same for the same address and browser, different otherwise', () => {
    expect(TAG).toMatch(/^[A-Za-z0-9_-]{11}$/);
    expect(clientTagOf('192.0.2.1', 'Mozilla/5.0')).toBe(TAG);
    expect(clientTagOf('192.0.2.2', 'Mozilla/5.0')).not.toBe(TAG);
    expect(clientTagOf('192.0.2.1', 'curl/8')).not.toBe(TAG);
  });
});

describe('view tokens', () => {
  it('name the poll, the time of issue, a nonce, the client and a MAC', () => {
    const token = tokens.issue(7, TAG, T0);
    expect(token).toMatch(/^7\.\d+\.[A-Za-z0-9_-]{12}\.[A-Za-z0-9_-]{11}\.[A-Za-z0-9_-]{43}$/);
    expect(token.split('.')[1]).toBe(String(T0));
    expect(token.split('.')[3]).toBe(TAG);
    expect(tokens.ttlMs).toBe(TTL);
  });

  it('verify as valid for their poll and client, with the time of issue and the nonce', () => {
    const token = tokens.issue(7, TAG, T0);
    expect(tokens.verify(token, 7, TAG, T0 + 1000)).toEqual({ state: 'valid', issuedAt: T0, nonce: token.split('.')[2] });
  });

  it('each carry their own nonce, so one spent token says nothing of another', () => {
    const nonces = new Set(Array.from({ length: 50 }, () => tokens.issue(7, TAG, T0).split('.')[2]));
    expect(nonces.size).toBe(50);
  });

  it('are refused (null) for another poll, whatever the MAC', () => {
    const token = tokens.issue(7, TAG, T0);
    expect(tokens.verify(token, 8, TAG, T0)).toBeNull();
    expect(tokens.verify(withPart(token, 0, '8'), 8, TAG, T0)).toBeNull();
  });

  it("are refused when any part was changed, or the MAC is another secret's", () => {
    const token = tokens.issue(7, TAG, T0);
    expect(tokens.verify(withPart(token, 1, String(T0 - 30_000)), 7, TAG, T0)).toBeNull();
    expect(tokens.verify(withPart(token, 2, flip(token.split('.')[2])), 7, TAG, T0)).toBeNull();
    expect(tokens.verify(withPart(token, 3, clientTagOf('198.51.100.1', 'x')), 7, TAG, T0)).toBeNull();
    expect(tokens.verify(withPart(token, 4, flip(token.split('.')[4], 5)), 7, TAG, T0)).toBeNull();
    const other = createViewTokens('another-secret-of-16-chars', TTL).issue(7, TAG, T0);
    expect(tokens.verify(other, 7, TAG, T0)).toBeNull();
  });

  it('are refused when not shaped like a token at all', () => {
    const token = tokens.issue(7, TAG, T0);
    for (const bad of ['', 'abc', `${token}.x`, token.slice(0, -1), `x${token}`, token.replace(/\./g, ':')]) {
      expect(tokens.verify(bad, 7, TAG, T0), bad).toBeNull();
    }
  });

  it('expire after the TTL: valid at exactly the TTL, expired one millisecond later', () => {
    const token = tokens.issue(7, TAG, T0);
    expect(tokens.verify(token, 7, TAG, T0 + TTL)?.state).toBe('valid');
    expect(tokens.verify(token, 7, TAG, T0 + TTL + 1)).toMatchObject({ state: 'expired', issuedAt: T0 });
  });

  it('count only for the client they were issued to (foreign), expiry winning over that', () => {
    const token = tokens.issue(7, TAG, T0);
    const otherClient = clientTagOf('192.0.2.1', 'another browser');
    expect(tokens.verify(token, 7, otherClient, T0 + 10)).toMatchObject({ state: 'foreign', issuedAt: T0 });
    expect(tokens.verify(token, 7, otherClient, T0 + TTL + 1)?.state).toBe('expired');
  });

  it('issued in the future are tolerated up to 5 s of clock skew, refused beyond', () => {
    const token = tokens.issue(7, TAG, T0 + 5000);
    expect(tokens.verify(token, 7, TAG, T0)?.state).toBe('valid');
    expect(tokens.verify(tokens.issue(7, TAG, T0 + 5001), 7, TAG, T0)).toBeNull();
  });
});
