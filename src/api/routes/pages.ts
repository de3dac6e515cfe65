import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Router, type Response } from 'express';
import { parseId } from '../http.js';

// Only these are served from web/assets; anything else there (or a name with a path in it) is not.
const ASSET_TYPES: Record<string, string> = {
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
};

/** The top-level web/ folder, found upward from this module: it runs from src/ (vitest) and dist/src/ (npm start). */
export function webRoot(from = path.dirname(fileURLToPath(import.meta.url))): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, 'package.json'))) return path.join(dir, 'web');
    if (path.dirname(dir) === dir) throw new Error(`no package.json above ${from}: cannot find web/`);
  }
}

/** The Content-Security-Policy of the pages: own scripts and styles only, WebSockets only to the gateway. */
export function pageCsp(publicRealtimeUrl: string, realtimePort: number): string {
  // Without a configured URL the page picks its own host name, unknown here: any host, the gateway's port.
  const gateway = publicRealtimeUrl ? new URL(publicRealtimeUrl).origin : `ws://*:${realtimePort} wss://*:${realtimePort}`;
  return [
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    // Option images are third-party https URLs; plain http would be mixed content on an https site.
    "img-src 'self' https: data:",
    `connect-src 'self' ${gateway}`,
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
  ].join('; ');
}

const escapeHtml = (s: string) =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

/**
 * The web pages: the list of active polls (`/`), a poll with its vote form and live results
 * (`/polls/:id`), and their assets. Read once at startup; the browser does the rest through
 * the public API and the realtime gateway.
 */
export function pagesRouter({ publicRealtimeUrl, realtimePort, root = webRoot() }: { publicRealtimeUrl: string; realtimePort: number; root?: string }) {
  const csp = pageCsp(publicRealtimeUrl, realtimePort);
  // Every page is layout.html (head, settings, sign-in header) around its own <main> and script.
  const layout = readFileSync(path.join(root, 'layout.html'), 'utf8')
    .replaceAll('{{REALTIME_URL}}', escapeHtml(publicRealtimeUrl))
    .replaceAll('{{REALTIME_PORT}}', String(realtimePort));
  const page = (file: string, title: string, script: string) =>
    layout.replace('{{TITLE}}', title).replace('{{SCRIPT}}', script).replace('{{MAIN}}', () => readFileSync(path.join(root, file), 'utf8'));
  const home = page('list.html', 'Active polls', 'list.js');
  const poll = page('poll.html', 'Poll', 'poll.js');
  // A fixed map from file name to content: a request can only ever name one of these.
  const assets = new Map<string, { type: string; body: Buffer }>();
  for (const name of readdirSync(path.join(root, 'assets'))) {
    const type = ASSET_TYPES[path.extname(name)];
    if (type) assets.set(name, { type, body: readFileSync(path.join(root, 'assets', name)) });
  }

  function sendPage(res: Response, html: string) {
    res
      .set({
        'Content-Security-Policy': csp,
        // A PRIVATE poll's page URL carries its key: never hand it to image hosts as a Referer.
        'Referrer-Policy': 'no-referrer',
        'X-Content-Type-Options': 'nosniff',
        'Cache-Control': 'no-cache',
      })
      .type('html')
      .send(html);
  }

  const r = Router();

  r.get('/', (_req, res) => {
    sendPage(res, home);
  });

  r.get('/polls/:id', (req, res, next) => {
    if (parseId(req.params.id) === null) return next();
    sendPage(res, poll);
  });

  r.get('/assets/:file', (req, res, next) => {
    const asset = assets.get(req.params.file);
    if (!asset) return next();
    res.set({ 'X-Content-Type-Options': 'nosniff', 'Cache-Control': 'no-cache' }).type(asset.type).send(asset.body);
  });

  return r;
}
