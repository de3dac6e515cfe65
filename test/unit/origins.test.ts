import { describe, expect, it } from 'vitest';
import { isOriginAllowed, isOwnOrigin, normalizeOrigin, parseOriginList } from '../../src/domain/origins.js';

describe('normalizeOrigin', () => {
  it('writes an origin as browsers send it: lower case, no default port', () => {
    expect(normalizeOrigin('https://News.Example')).toBe('https://news.example');
    expect(normalizeOrigin('HTTPS://news.example:443')).toBe('https://news.example');
    expect(normalizeOrigin('http://news.example:80')).toBe('http://news.example');
    expect(normalizeOrigin('http://localhost:3000')).toBe('http://localhost:3000');
    expect(normalizeOrigin('https://news.example:8443')).toBe('https://news.example:8443');
    expect(normalizeOrigin('http://[::1]:3000')).toBe('http://[::1]:3000');
    expect(normalizeOrigin('https://xn--bcher-kva.example')).toBe('https://xn--bcher-kva.example');
  });
  it('refuses what is not an http(s) origin', () => {
    for (const bad of [
      'null',
      '',
      '*',
      'news.example',
      'https://news.example/',
      'https://news.example/embed',
      'https://news.example?x',
      'https://news.example#x',
      'https://user@news.example',
      'javascript:alert(1)',
      'ftp://news.example',
      'https://',
      'https://news example',
      'https://news.example:99999',
    ]) {
      expect(normalizeOrigin(bad), bad).toBeNull();
    }
  });
});

describe('parseOriginList', () => {
  it('reads a comma-separated list, * and the entries that are not origins', () => {
    expect(parseOriginList('')).toEqual({ any: false, origins: new Set(), invalid: [] });
    expect(parseOriginList(' https://A.example , http://b.example:8080,,')).toEqual({
      any: false,
      origins: new Set(['https://a.example', 'http://b.example:8080']),
      invalid: [],
    });
    expect(parseOriginList('*').any).toBe(true);
    expect(parseOriginList('https://a.example/x, nope').invalid).toEqual(['https://a.example/x', 'nope']);
  });
});

describe('isOwnOrigin', () => {
  it('compares the origin host with the Host the request went to, whatever the scheme', () => {
    expect(isOwnOrigin('http://localhost:3000', 'localhost:3000')).toBe(true);
    expect(isOwnOrigin('https://polls.example', 'polls.example')).toBe(true);
    expect(isOwnOrigin('https://polls.example', 'Polls.Example:443')).toBe(true);
    expect(isOwnOrigin('http://polls.example', 'polls.example:80')).toBe(true);
    expect(isOwnOrigin('http://localhost:3001', 'localhost:3000')).toBe(false);
    expect(isOwnOrigin('https://polls.example.evil.example', 'polls.example')).toBe(false);
    expect(isOwnOrigin('https://evil.example', 'polls.example')).toBe(false);
    expect(isOwnOrigin('null', 'polls.example')).toBe(false);
    expect(isOwnOrigin('https://polls.example', undefined)).toBe(false);
  });
  it('with anyPort, compares host names only (the gateway, next to the pages on another port)', () => {
    expect(isOwnOrigin('http://localhost:3000', 'localhost:3001', true)).toBe(true);
    expect(isOwnOrigin('http://[::1]:3000', '[::1]:3001', true)).toBe(true);
    expect(isOwnOrigin('https://polls.example', 'polls.example:3001', true)).toBe(true);
    expect(isOwnOrigin('https://evil.example', 'polls.example:3001', true)).toBe(false);
  });
});

describe('isOriginAllowed', () => {
  const none = parseOriginList('');
  const listed = parseOriginList('https://partner.example');
  it("allows the own pages, the configured origins and the poll's embed origins, nothing else", () => {
    expect(isOriginAllowed('https://polls.example', 'polls.example', none)).toBe(true);
    expect(isOriginAllowed('https://evil.example', 'polls.example', none)).toBe(false);
    expect(isOriginAllowed('https://partner.example', 'polls.example', listed)).toBe(true);
    expect(isOriginAllowed('https://partner.example', 'polls.example', none)).toBe(false);
    expect(isOriginAllowed('https://news.example', 'polls.example', none, ['https://news.example'])).toBe(true);
    expect(isOriginAllowed('https://news.example', 'polls.example', none, ['https://other.example'])).toBe(false);
    expect(isOriginAllowed('https://evil.example', 'polls.example', parseOriginList('*'))).toBe(true);
    expect(isOriginAllowed('null', 'polls.example', listed, ['https://news.example'])).toBe(false);
  });
  it('matches an origin written unusually (a hand-made client) in its normal form', () => {
    expect(isOriginAllowed('HTTPS://Partner.Example:443', 'polls.example', listed)).toBe(true);
    expect(isOriginAllowed('https://NEWS.example', 'polls.example', none, ['https://news.example'])).toBe(true);
  });
});
