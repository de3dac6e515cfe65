import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pagesRouter } from '../../src/api/routes/pages.js';
import { call, createPoll, startStack, type Stack } from '../helpers/stack.js';

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ workers: false });
});
afterAll(async () => {
  await stack?.close();
});

/** A GET with the path sent byte for byte: fetch would normalise `..` away before it leaves. */
function rawGet(base: string, path: string): Promise<{ status: number; body: string }> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    http
      .get({ hostname, port, path }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode!, body }));
      })
      .on('error', reject);
  });
}

const assetsOf = (html: string) => [...html.matchAll(/(?:src|href)="(\/(?:assets|vendor)\/[^"]+)"/g)].map((m) => m[1]);

// Every page the API serves, each with the script that runs it.
const PAGES: Array<[string, string]> = [
  ['/', 'list.js'],
  ['/polls/new', 'new.js'],
  ['/polls/mine', 'mine.js'],
  ['/polls/1', 'poll.js'],
  ['/polls/1/moderation', 'moderation.js'],
  ['/polls/1/analytics', 'analytics.js'],
  ['/moderation', 'queue.js'],
  ['/auth/callback', 'callback.js'],
];

function expectPage(res: { status: number; headers: Headers; body: string }, frameAncestors = "frame-ancestors 'none'") {
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/html; charset=utf-8/);
  const csp = res.headers.get('content-security-policy') ?? '';
  expect(csp).toContain("default-src 'self'");
  expect(csp).toContain("script-src 'self'");
  expect(csp).toContain("style-src 'self'");
  expect(csp).toContain("object-src 'none'");
  expect(csp).toContain(frameAncestors);
  expect(csp).not.toMatch(/unsafe-|\*;|\bhttp:/);
  expect(res.headers.get('referrer-policy')).toBe('no-referrer');
  // Nothing inline that the CSP would have to allow: external scripts only, no handlers, no style attributes.
  for (const tag of res.body.match(/<script\b[^>]*>/g) ?? []) expect(tag).toMatch(/\ssrc="\/(assets|vendor)\//);
  expect(res.body).not.toMatch(/<script\b[^>]*>[^<]+<\/script>/);
  expect(res.body).not.toMatch(/\son[a-z]+=|\sstyle=|<style/i);
  expect(res.body).not.toContain('{{');
}

describe('pages', () => {
  it('serves every page with its CSP and its own script', async () => {
    for (const [path, script] of PAGES) {
      const res = await call<string>(stack, 'GET', path);
      expectPage(res);
      expect(assetsOf(res.body), path).toEqual(expect.arrayContaining(['/assets/app.css', `/assets/${script}`]));
      // Live results come through this origin's /ws (the API forwards it to the gateway).
      expect(res.headers.get('content-security-policy'), path).toContain("connect-src 'self';");
      expect(res.body).toContain('<meta name="dev-sign-in" content="on">');
    }
    // The charts come from node_modules, served here, never a CDN.
    expect(assetsOf((await call<string>(stack, 'GET', '/polls/1/analytics')).body)).toContain('/vendor/chart.umd.min.js');
  });

  it("frames an embed only from the poll's embed origins (and only for who may read it)", async () => {
    const csp = async (path: string) => {
      const res = await call<string>(stack, 'GET', path);
      expect(res.status, path).toBe(200);
      return res.headers
        .get('content-security-policy')!
        .split('; ')
        .find((d) => d.startsWith('frame-ancestors'));
    };
    const pub = await createPoll(stack, { settings: { embed_origins: ['https://news.example', 'https://Blog.Example:8443'] } });
    expectPage(await call<string>(stack, 'GET', `/embed/polls/${pub.poll_id}`), "frame-ancestors 'self' https://news.example https://blog.example:8443");
    const priv = await createPoll(stack, { visibility: 'PRIVATE', settings: { embed_origins: ['https://blog.example'] } });
    expect(await csp(`/embed/polls/${priv.poll_id}?key=${priv.access_key}`)).toBe("frame-ancestors 'self' https://blog.example");
    // Without its key a PRIVATE poll looks like no poll: its embedding sites are not told.
    expect(await csp(`/embed/polls/${priv.poll_id}`)).toBe("frame-ancestors 'self'");
    expect(await csp(`/embed/polls/${priv.poll_id}?key=wrong`)).toBe("frame-ancestors 'self'");
    const draft = await createPoll(stack, { status: 'DRAFT', settings: { embed_origins: ['https://news.example'] } });
    expect(await csp(`/embed/polls/${draft.poll_id}`)).toBe("frame-ancestors 'self'");
    expect(await csp('/embed/polls/999999')).toBe("frame-ancestors 'self'");
    expect(await csp(`/embed/polls/${(await createPoll(stack)).poll_id}`)).toBe("frame-ancestors 'self'");
    expect((await call(stack, 'GET', '/embed/polls/abc')).status).toBe(404);
  });

  it('draws a share QR code of the poll link', async () => {
    const res = await call<string>(stack, 'GET', '/polls/5/qr.svg?key=abc');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^image\/svg\+xml/);
    expect(res.headers.get('cache-control')).toBe('private, no-store');
    expect(res.body).toMatch(/^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
    // A different link is a different code.
    expect((await call<string>(stack, 'GET', '/polls/5/qr.svg')).body).not.toBe(res.body);
    expect((await call(stack, 'GET', '/polls/abc/qr.svg')).status).toBe(404);
  });

  it('serves a poll page (PRIVATE ones with their ?key=) carrying the realtime setting', async () => {
    const pub = await createPoll(stack);
    const priv = await createPoll(stack, { visibility: 'PRIVATE' });
    for (const path of [`/polls/${pub.poll_id}`, `/polls/${priv.poll_id}?key=${priv.access_key}`]) {
      const res = await call<string>(stack, 'GET', path);
      expectPage(res);
      expect(assetsOf(res.body)).toEqual(expect.arrayContaining(['/assets/app.css', '/assets/poll.js']));
      // Default PUBLIC_REALTIME_URL: empty, and the page uses its own origin's /ws.
      expect(res.body).toContain('<meta name="realtime-url" content="">');
    }
  });

  it('serves every asset, and every module they import, with its content type', async () => {
    const pages = await Promise.all([...PAGES.map(([p]) => p), '/embed/polls/1'].map((p) => call<string>(stack, 'GET', p)));
    const queue = [...new Set(pages.flatMap((p) => assetsOf(p.body)))];
    const seen = new Set<string>();
    while (queue.length) {
      const path = queue.shift()!;
      if (seen.has(path)) continue;
      seen.add(path);
      const res = await call<string>(stack, 'GET', path);
      expect(res.status, path).toBe(200);
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
      if (path.endsWith('.css')) expect(res.headers.get('content-type'), path).toBe('text/css; charset=utf-8');
      else if (path.startsWith('/vendor/')) expect(res.headers.get('content-type'), path).toBe('text/javascript; charset=utf-8');
      else {
        // Module scripts are refused by browsers unless served as JavaScript.
        expect(res.headers.get('content-type'), path).toBe('text/javascript; charset=utf-8');
        // User text goes in as text nodes only.
        expect(res.body, path).not.toMatch(/innerHTML|outerHTML|insertAdjacentHTML|document\.write/);
        for (const m of res.body.matchAll(/from '\.\/([^']+)'/g)) queue.push(`/assets/${m[1]}`);
      }
    }
    expect([...seen]).toEqual(
      expect.arrayContaining([
        '/assets/app.css',
        '/assets/common.js',
        '/assets/ballot.js',
        '/assets/live.js',
        '/assets/results.js',
        '/vendor/chart.umd.min.js',
        ...PAGES.map(([, s]) => `/assets/${s}`),
        '/assets/embed.js',
      ]),
    );
  });

  it('leaks no file outside the assets, whatever the path says', async () => {
    const attempts = [
      '/..%2fpackage.json',
      '/web/../package.json',
      '/../package.json',
      '/assets/../package.json',
      '/assets/../../package.json',
      '/assets/..%2f..%2fpackage.json',
      '/assets/%2e%2e/%2e%2e/package.json',
      '/assets/..%5c..%5cpackage.json',
      '/assets/....//....//package.json',
      '/assets/common.js%00.css',
      '/assets/',
      '/assets/.',
      '/polls/1/../../package.json',
      '/polls/..%2f..%2fpackage.json',
      '/package.json',
      '/index.html',
      '/poll.html',
      '/web/index.html',
      '/src/api/routes/pages.ts',
      '/vendor/../package.json',
      '/vendor/chart.js',
      '/vendor/chart.umd.min.js.map',
      '/vendor/%2e%2e/package.json',
      '/embed/../package.json',
      '/layout.html',
      '/embed-layout.html',
    ];
    for (const path of attempts) {
      const res = await rawGet(stack.url, path);
      expect(res.status, path).toBe(404);
      expect(res.body, path).not.toMatch(/"name": "viral-polls"|"devDependencies"|\{\{REALTIME|import \{ Router/);
    }
  });

  it('answers unknown paths 404, and keeps JSON 404s under /api', async () => {
    expect((await call(stack, 'GET', '/polls/abc')).status).toBe(404);
    expect((await call(stack, 'GET', '/polls/0')).status).toBe(404);
    expect((await call(stack, 'GET', '/nope')).status).toBe(404);
    const api = await call(stack, 'GET', '/api/v1/nope');
    expect(api.status).toBe(404);
    expect(api.body).toEqual({ error: { code: 'NOT_FOUND', message: 'No such endpoint' } });
  });
});

describe('PUBLIC_REALTIME_URL', () => {
  it('goes into the page (HTML-escaped) and narrows connect-src to its origin', async () => {
    const app = express().use('/', pagesRouter({ publicRealtimeUrl: 'wss://live.example:8443/ws?a="<b>"' }));
    const server = app.listen(0);
    try {
      await new Promise((resolve) => server.once('listening', resolve));
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const res = await call<string>({ url }, 'GET', '/polls/5');
      expectPage(res);
      expect(res.body).toContain('<meta name="realtime-url" content="wss://live.example:8443/ws?a=&quot;&lt;b&gt;&quot;">');
      expect(res.headers.get('content-security-policy')).toContain("connect-src 'self' wss://live.example:8443;");
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

describe('/openapi.yaml', () => {
  it('is the repository document, as YAML', async () => {
    const res = await call<string>(stack, 'GET', '/openapi.yaml');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/yaml/);
    expect(res.body).toBe(readFileSync(new URL('../../openapi.yaml', import.meta.url), 'utf8'));
  });
});
