import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RealtimeHandle } from '../../src/realtime/gateway.js';
import { startRealtime, watch } from '../helpers/realtime.js';
import { call, createPoll, startStack, tokenFor, type Stack } from '../helpers/stack.js';

/**
 * Browser origins over HTTP (a real browser test comes with Chromium): a request with an Origin
 * header is served only from the service's own pages, CORS_ORIGINS and the poll's embed origins.
 */
let stack: Stack;
let listed: Stack;
let gateway: RealtimeHandle;
let creator: string;
const EVIL = 'https://evil.example';
const NEWS = 'https://news.example';

beforeAll(async () => {
  const env = { VOTES_PER_IP_PER_POLL_PER_HOUR: '1000000', PREFIX_VOTES_LIMIT: '1000000' };
  [stack, listed] = await Promise.all([
    startStack({ workers: false, env }),
    startStack({ workers: false, env: { ...env, CORS_ORIGINS: 'https://partner.example, http://Other.Example:8080', TRUST_PROXY: 'loopback' } }),
  ]);
  gateway = await startRealtime(stack.config);
  creator = await tokenFor(21);
});
afterAll(async () => {
  await gateway?.close();
  await Promise.allSettled([stack?.close(), listed?.close()]);
});

let voter = 0;
const vote = (s: Stack, poll: { poll_id: number; options: Array<{ option_id: number }> }, origin?: string, query = '') =>
  call(s, 'POST', `/api/v1/polls/${poll.poll_id}/votes${query}`, {
    body: { options: [poll.options[0].option_id], fingerprint: `o${++voter}` },
    headers: origin ? { origin } : {},
  });
const preflight = (s: Stack, path: string, origin: string) =>
  fetch(`${s.url}${path}`, {
    method: 'OPTIONS',
    headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type, authorization' },
  });
const code = (res: { status: number; body: any }) => `${res.status} ${res.body?.error?.code ?? ''}`.trim();

describe('by default (CORS_ORIGINS unset)', () => {
  it('refuses a foreign page on every API route with 403 ORIGIN_NOT_ALLOWED, the vote fast path included, and stores nothing', async () => {
    const poll = await createPoll(stack, { settings: { captcha: 'off' } }, creator);
    const refused = await vote(stack, poll, EVIL);
    expect(code(refused)).toBe('403 ORIGIN_NOT_ALLOWED');
    expect(refused.headers.get('access-control-allow-origin')).toBeNull();
    const headers = { origin: EVIL };
    for (const [method, path, token] of [
      ['GET', `/api/v1/polls/${poll.poll_id}`],
      ['GET', `/api/v1/polls/${poll.poll_id}/results`],
      ['GET', `/api/v1/polls/${poll.poll_id}/analytics`, creator],
      ['GET', `/api/v1/polls/${poll.poll_id}/votes.csv`, creator],
      ['POST', `/api/v1/polls/${poll.poll_id}/close`, creator],
      ['GET', '/api/v1/polls'],
      ['POST', '/api/v1/polls', creator],
      ['GET', '/api/v1/captcha/challenge'],
      ['GET', '/api/v1/admin/flagged-votes', await tokenFor(9, { role: 'admin' })],
      ['GET', '/api/v1/nowhere'],
    ] as Array<[string, string, string?]>) {
      expect(code(await call(stack, method, path, { headers, token, body: method === 'POST' ? {} : undefined })), `${method} ${path}`).toBe(
        '403 ORIGIN_NOT_ALLOWED',
      );
    }
    const pre = await preflight(stack, `/api/v1/polls/${poll.poll_id}/votes`, EVIL);
    expect(pre.status).toBe(403);
    expect(pre.headers.get('access-control-allow-origin')).toBeNull();
    // Nothing was done on the refused requests' behalf.
    expect((await call(stack, 'GET', `/api/v1/polls/${poll.poll_id}`)).body.status).toBe('ACTIVE');
    expect((await vote(stack, poll, 'null')).status).toBe(403);
  });

  it("serves the service's own pages (same host as the API), echoing the origin, never *", async () => {
    const poll = await createPoll(stack, { settings: { captcha: 'off' } }, creator);
    const own = new URL(stack.url).origin;
    const res = await vote(stack, poll, own);
    expect(res.status).toBe(202);
    expect(res.headers.get('access-control-allow-origin')).toBe(own);
    expect(res.headers.get('vary')).toMatch(/Origin/);
    const read = await call(stack, 'GET', `/api/v1/polls/${poll.poll_id}/results`, { headers: { origin: own } });
    expect(read.status).toBe(200);
    expect(read.headers.get('access-control-allow-origin')).toBe(own);
    // The same host on another port is another origin.
    const port = Number(new URL(stack.url).port);
    expect(code(await vote(stack, poll, `http://localhost:${port + 1}`))).toBe('403 ORIGIN_NOT_ALLOWED');
    // A client that is not a browser sends no Origin and is not concerned.
    expect((await vote(stack, poll)).status).toBe(202);
  });

  it("lets a poll's embed origins vote and read that poll, and only that one", async () => {
    const embedded = await createPoll(stack, { settings: { captcha: 'off', embed_origins: ['HTTPS://News.Example:443', NEWS] } }, creator);
    expect(embedded.settings.embed_origins).toEqual([NEWS]);
    const other = await createPoll(stack, { settings: { captcha: 'off' } }, creator);
    const pre = await preflight(stack, `/api/v1/polls/${embedded.poll_id}/votes`, NEWS);
    expect(pre.status).toBe(204);
    expect(pre.headers.get('access-control-allow-origin')).toBe(NEWS);
    expect(pre.headers.get('access-control-allow-methods')).toContain('POST');
    expect(pre.headers.get('access-control-allow-headers')?.toLowerCase()).toContain('content-type');
    const ok = await vote(stack, embedded, NEWS);
    expect(ok.status).toBe(202);
    expect(ok.headers.get('access-control-allow-origin')).toBe(NEWS);
    expect(ok.headers.get('access-control-expose-headers')).toContain('Retry-After');
    expect((await call(stack, 'GET', `/api/v1/polls/${embedded.poll_id}/results`, { headers: { origin: NEWS } })).status).toBe(200);
    expect(code(await vote(stack, other, NEWS))).toBe('403 ORIGIN_NOT_ALLOWED');
    expect((await preflight(stack, `/api/v1/polls/${other.poll_id}/votes`, NEWS)).status).toBe(403);
    expect(code(await call(stack, 'GET', '/api/v1/polls', { headers: { origin: NEWS } }))).toBe('403 ORIGIN_NOT_ALLOWED');
    expect(code(await vote(stack, { poll_id: 987654321, options: [{ option_id: 1 }] }, NEWS))).toBe('403 ORIGIN_NOT_ALLOWED');
  });

  it('checks and normalises settings.embed_origins', async () => {
    const create = (embed_origins: unknown) =>
      call(stack, 'POST', '/api/v1/polls', {
        token: creator,
        body: { question: 'Q?', poll_type: 'SINGLE_CHOICE', options: [{ text: 'a' }, { text: 'b' }], settings: { embed_origins } },
      });
    for (const bad of [['https://news.example/embed'], ['null'], ['javascript:alert(1)'], ['news.example'], 'https://news.example', [7]]) {
      const res = await create(bad);
      expect(code(res), JSON.stringify(bad)).toBe('400 VALIDATION_ERROR');
      expect(res.body.error.field).toMatch(/^settings\.embed_origins/);
    }
    const fine = await create(['http://localhost:8080', 'https://Blog.Example']);
    expect(fine.status).toBe(201);
    expect(fine.body.settings.embed_origins).toEqual(['http://localhost:8080', 'https://blog.example']);
    expect((await create(undefined)).body.settings.embed_origins).toEqual([]);
    // A draft's embed origins can be edited.
    const draft = await createPoll(stack, { status: 'DRAFT' }, creator);
    const patched = await call(stack, 'PATCH', `/api/v1/polls/${draft.poll_id}`, { token: creator, body: { settings: { embed_origins: [NEWS] } } });
    expect(patched.body.settings.embed_origins).toEqual([NEWS]);
  });

  it('ignores X-Forwarded-Host when no proxy is trusted', async () => {
    const poll = await createPoll(stack, { settings: { captcha: 'off' } }, creator);
    const res = await call(stack, 'POST', `/api/v1/polls/${poll.poll_id}/votes`, {
      body: { options: [poll.options[0].option_id], fingerprint: 'xfh' },
      headers: { origin: EVIL, 'x-forwarded-host': 'evil.example' },
    });
    expect(code(res)).toBe('403 ORIGIN_NOT_ALLOWED');
  });
});

describe('with CORS_ORIGINS and a trusted proxy', () => {
  it('serves the listed origins (as browsers write them) and refuses the rest', async () => {
    const poll = await createPoll(listed, { settings: { captcha: 'off' } }, creator);
    for (const origin of ['https://partner.example', 'http://other.example:8080']) {
      const res = await vote(listed, poll, origin);
      expect(res.status, origin).toBe(202);
      expect(res.headers.get('access-control-allow-origin')).toBe(origin);
      expect((await call(listed, 'GET', '/api/v1/polls', { headers: { origin } })).status).toBe(200);
    }
    expect(code(await vote(listed, poll, EVIL))).toBe('403 ORIGIN_NOT_ALLOWED');
    expect(code(await vote(listed, poll, 'http://other.example'))).toBe('403 ORIGIN_NOT_ALLOWED');
  });

  it("takes the host the browser used from a trusted proxy's X-Forwarded-Host", async () => {
    const poll = await createPoll(listed, { settings: { captcha: 'off' } }, creator);
    const res = await call(listed, 'POST', `/api/v1/polls/${poll.poll_id}/votes`, {
      body: { options: [poll.options[0].option_id], fingerprint: 'proxied' },
      headers: { origin: 'https://polls.example', 'x-forwarded-host': 'polls.example' },
    });
    expect(res.status).toBe(202);
  });
});

describe('the realtime gateway', () => {
  const ended = async (w: ReturnType<typeof watch>) => {
    const end = await Promise.race([w.ended, w.waitFor(() => true, 5000).then(() => ({ code: 'snapshot' as const }))]);
    w.close();
    return (end as { code?: unknown; status?: number }).status ?? (end as { code?: unknown }).code;
  };

  it("follows the same rule: its own host name (the pages on the API's port), CORS_ORIGINS, the poll's embed origins", async () => {
    const embedded = await createPoll(stack, { settings: { embed_origins: [NEWS] } }, creator);
    const other = await createPoll(stack, {}, creator);
    const pages = new URL(stack.url).origin;
    expect(await ended(watch(gateway, { poll_id: embedded.poll_id }, { headers: { origin: pages } }))).toBe('snapshot');
    expect(await ended(watch(gateway, { poll_id: embedded.poll_id }, { headers: { origin: NEWS } }))).toBe('snapshot');
    expect(await ended(watch(gateway, { poll_id: other.poll_id }, { headers: { origin: NEWS } }))).toBe(403);
    expect(await ended(watch(gateway, { poll_id: embedded.poll_id }, { headers: { origin: EVIL } }))).toBe(403);
    expect(await ended(watch(gateway, { poll_id: embedded.poll_id }))).toBe('snapshot');
    const withCors = await startRealtime(stack.config, { CORS_ORIGINS: 'https://partner.example' });
    try {
      expect(await ended(watch(withCors, { poll_id: other.poll_id }, { headers: { origin: 'https://partner.example' } }))).toBe('snapshot');
      expect(await ended(watch(withCors, { poll_id: other.poll_id }, { headers: { origin: EVIL } }))).toBe(403);
    } finally {
      await withCors.close();
    }
  });

  it('tells a made-up Origin nothing about private polls: refused like an unknown poll', async () => {
    const hidden = await createPoll(stack, { visibility: 'PRIVATE', settings: { embed_origins: [NEWS] } }, creator);
    expect(await ended(watch(gateway, { poll_id: hidden.poll_id }, { headers: { origin: NEWS } }))).toBe(403);
    expect(await ended(watch(gateway, { poll_id: 987654321 }, { headers: { origin: NEWS } }))).toBe(403);
    expect(await ended(watch(gateway, { poll_id: hidden.poll_id, key: hidden.access_key! }, { headers: { origin: NEWS } }))).toBe('snapshot');
  });
});
