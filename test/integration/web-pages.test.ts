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

const assetsOf = (html: string) => [...html.matchAll(/(?:src|href)="(\/assets\/[^"]+)"/g)].map((m) => m[1]);

function expectPage(res: { status: number; headers: Headers; body: string }) {
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/html; charset=utf-8/);
  const csp = res.headers.get('content-security-policy') ?? '';
  expect(csp).toContain("default-src 'self'");
  expect(csp).toContain("script-src 'self'");
  expect(csp).toContain("style-src 'self'");
  expect(csp).toContain("object-src 'none'");
  expect(csp).toContain("frame-ancestors 'none'");
  expect(csp).not.toMatch(/unsafe-|\*;|\bhttp:/);
  expect(res.headers.get('referrer-policy')).toBe('no-referrer');
  // Nothing inline that the CSP would have to allow: external scripts only, no handlers, no style attributes.
  for (const tag of res.body.match(/<script\b[^>]*>/g) ?? []) expect(tag).toMatch(/\ssrc="\/assets\//);
  expect(res.body).not.toMatch(/<script\b[^>]*>[^<]+<\/script>/);
  expect(res.body).not.toMatch(/\son[a-z]+=|\sstyle=|<style/i);
  expect(res.body).not.toContain('{{');
}

describe('pages', () => {
  it('serves the list of active polls at / with its CSP and assets', async () => {
    const res = await call<string>(stack, 'GET', '/');
    expectPage(res);
    expect(assetsOf(res.body)).toEqual(expect.arrayContaining(['/assets/app.css', '/assets/list.js']));
    expect(res.headers.get('content-security-policy')).toContain(`connect-src 'self' ws://*:${stack.config.REALTIME_PORT} wss://*:${stack.config.REALTIME_PORT}`);
  });

  it('serves a poll page (PRIVATE ones with their ?key=) carrying the realtime setting', async () => {
    const pub = await createPoll(stack);
    const priv = await createPoll(stack, { visibility: 'PRIVATE' });
    for (const path of [`/polls/${pub.poll_id}`, `/polls/${priv.poll_id}?key=${priv.access_key}`]) {
      const res = await call<string>(stack, 'GET', path);
      expectPage(res);
      expect(assetsOf(res.body)).toEqual(expect.arrayContaining(['/assets/app.css', '/assets/poll.js']));
      // Default PUBLIC_REALTIME_URL: empty, and the page uses its own host name on REALTIME_PORT.
      expect(res.body).toContain('<meta name="realtime-url" content="">');
      expect(res.body).toContain(`<meta name="realtime-port" content="${stack.config.REALTIME_PORT}">`);
    }
  });

  it('serves every asset, and every module they import, with its content type', async () => {
    const pages = await Promise.all(['/', '/polls/1'].map((p) => call<string>(stack, 'GET', p)));
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
      else {
        // Module scripts are refused by browsers unless served as JavaScript.
        expect(res.headers.get('content-type'), path).toBe('text/javascript; charset=utf-8');
        // User text goes in as text nodes only.
        expect(res.body, path).not.toMatch(/innerHTML|outerHTML|insertAdjacentHTML|document\.write/);
        for (const m of res.body.matchAll(/from '\.\/([^']+)'/g)) queue.push(`/assets/${m[1]}`);
      }
    }
    expect([...seen]).toEqual(expect.arrayContaining(['/assets/app.css', '/assets/list.js', '/assets/poll.js', '/assets/common.js']));
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
    const app = express().use('/', pagesRouter({ publicRealtimeUrl: 'wss://live.example:8443/ws?a="<b>"', realtimePort: 4444 }));
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
