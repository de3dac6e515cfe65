import { describe, expect, it } from 'vitest';
import { countryOfIp, deviceClassOf } from '../../src/workers/analytics-classify.js';
import { choiceTexts, csvColumns, csvRecord, type ExportedVote } from '../../src/domain/analytics-csv.js';
import { completionRate, countryCodeOf, hourlySeries, lastHourSeries, secondsOf, sumBy } from '../../src/domain/analytics.js';

describe('analytics rules', () => {
  it('caps the completion rate at 1 and rounds it', () => {
    expect(completionRate(0, 0)).toBe(0);
    expect(completionRate(3, 0)).toBe(1);
    expect(completionRate(10, 9)).toBe(1);
    expect(completionRate(7, 9)).toBe(0.7778);
  });

  it('reads a CDN country header', () => {
    expect(countryCodeOf('de')).toBe('DE');
    expect(countryCodeOf(' US ')).toBe('US');
    expect(countryCodeOf('XX')).toBe('ZZ');
    expect(countryCodeOf('T1')).toBe('ZZ');
    expect(countryCodeOf('Germany')).toBeNull();
    expect(countryCodeOf(undefined)).toBeNull();
    expect(countryCodeOf(['DE', 'FR'])).toBeNull();
  });

  it('turns epoch buckets into series', () => {
    const hour = Date.parse('2026-11-28T10:00:00.000Z') / 3_600_000;
    expect(
      hourlySeries([
        { bucket: hour + 1, votes: 2 },
        { bucket: hour, votes: 5 },
      ]),
    ).toEqual([
      { hour: '2026-11-28T10:00:00.000Z', votes: 5 },
      { hour: '2026-11-28T11:00:00.000Z', votes: 2 },
    ]);
    const now = new Date('2026-11-28T10:30:20.000Z');
    const minute = Math.floor(now.getTime() / 60_000);
    const series = lastHourSeries(
      [
        { bucket: minute, votes: 3 },
        { bucket: minute - 59, votes: 1 },
        { bucket: minute - 60, votes: 9 },
      ],
      now,
    );
    expect(series).toHaveLength(60);
    expect(series[0]).toEqual({ minute: '2026-11-28T09:31:00.000Z', votes: 1 });
    expect(series[59]).toEqual({ minute: '2026-11-28T10:30:00.000Z', votes: 3 });
    expect(series.reduce((n, m) => n + m.votes, 0)).toBe(4);
  });

  it('adds up counts per key and converts milliseconds', () => {
    expect(
      sumBy(
        [
          { k: 'a', n: 2 },
          { k: 'b', n: 1 },
          { k: 'a', n: 3 },
        ],
        (r) => r.k,
        (r) => r.n,
        { c: 0 },
      ),
    ).toEqual({ a: 5, b: 1, c: 0 });
    expect(secondsOf(1234.5)).toBe(1.235);
    expect(secondsOf(null)).toBeNull();
  });
});

describe('classification', () => {
  it('classifies User-Agents into the five device classes', () => {
    const cases: Array<[string | null, string]> = [
      ['Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36', 'desktop'],
      ['Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Safari/605.1.15', 'desktop'],
      ['Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1', 'mobile'],
      ['Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36', 'mobile'],
      ['Mozilla/5.0 (iPad; CPU OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1', 'tablet'],
      ['Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)', 'bot'],
      ['curl/8.4.0', 'bot'],
      ['python-requests/2.31.0', 'bot'],
      ['Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.0.0 Safari/537.36', 'bot'],
      ['Mozilla/5.0 (SMART-TV; Linux; Tizen 6.0) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/4.0 Chrome/76.0.3809.146 TV Safari/537.36', 'other'],
      ['node', 'bot'],
      ['', 'other'],
      [null, 'other'],
    ];
    for (const [ua, expected] of cases) expect([ua, deviceClassOf(ua)]).toEqual([ua, expected]);
  });

  it('looks countries up offline; private and loopback addresses are ZZ', () => {
    expect(countryOfIp('8.8.8.8')).toBe('US');
    expect(countryOfIp('81.2.69.142')).toBe('GB');
    expect(countryOfIp('2a00:1450:4001:80e::200e')).toBe('DE');
    for (const ip of ['10.0.0.1', '192.168.1.1', '127.0.0.1', '::1', 'not an ip', null]) expect(countryOfIp(ip)).toBe('ZZ');
  });
});

describe('vote export records', () => {
  const vote: ExportedVote = {
    vote_id: '3f1c0b7e-0000-4000-8000-000000000001',
    status: 'VALID',
    flag_reasons: [],
    selected_options: [12, 14],
    rank_order: null,
    ratings: { '12': 5, '13': 2 },
    response_ms: 1500,
    change_count: 1,
    created_at: new Date('2026-11-28T10:17:42.123Z'),
    accepted_at: new Date('2026-11-28T10:59:01.000Z'),
    voter_id: 42,
    voter_fingerprint: null,
    ip_address: '203.0.113.9',
    user_agent: 'curl/8',
    country: null,
  };

  it('carries who voted only on polls that are not anonymous', () => {
    expect(csvColumns(false)).toContain('voter_id');
    expect(csvColumns(true)).not.toEqual(expect.arrayContaining(['voter_id', 'voter_fingerprint', 'ip_address', 'user_agent', 'country']));
    const open = csvRecord(
      vote,
      false,
      new Map([
        [12, 'vim'],
        [13, 'emacs'],
      ]),
    );
    expect(open).toHaveLength(csvColumns(false).length);
    expect(open).toEqual([
      vote.vote_id,
      'VALID',
      '',
      '12;14',
      '',
      '12:5;13:2',
      'vim: 5; emacs: 2',
      1500,
      1,
      '2026-11-28T10:17:42.123Z',
      '2026-11-28T10:59:01.000Z',
      42,
      null,
      '203.0.113.9',
      'curl/8',
      null,
    ]);
    const hidden = csvRecord(vote, true);
    expect(hidden).toHaveLength(csvColumns(true).length);
    expect(hidden.slice(-2)).toEqual(['2026-11-28T10:00:00.000Z', '2026-11-28T10:00:00.000Z']);
    expect(hidden).not.toContain(42);
    expect(hidden).not.toContain(vote.vote_id);
  });

  it('spells ballots in option texts (an option gone from the poll as its id)', () => {
    const texts = new Map([
      [12, 'vim'],
      [14, 'nano'],
    ]);
    expect(choiceTexts({ selected_options: [12, 14], rank_order: null, ratings: null }, texts)).toBe('vim; nano');
    expect(choiceTexts({ selected_options: [14, 12, 99], rank_order: [14, 12, 99], ratings: null }, texts)).toBe('1. nano; 2. vim; 3. #99');
    expect(choiceTexts({ selected_options: [12], rank_order: null, ratings: { '12': 4 } }, texts)).toBe('vim: 4');
  });
});
