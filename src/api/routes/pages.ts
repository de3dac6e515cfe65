import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Router, type Request, type Response } from 'express';
import QRCode from 'qrcode';
import { parseId } from '../../shared/request.js';
import { imageSources, type ImageHosts } from '../../domain/poll-settings.js';

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

/** Browser builds of npm packages the pages use, served from node_modules (never a CDN): URL name -> file. */
export function vendorFiles(): Map<string, string> {
  const require = createRequire(import.meta.url);
  // chart.js exports only its module builds; the UMD file sits beside them in dist/.
  const chartDist = path.dirname(require.resolve('chart.js'));
  return new Map([['chart.umd.min.js', path.join(chartDist, 'chart.umd.min.js')]]);
}

/** How the pages sign in: the development form, and an OpenID provider (authorization code + PKCE). */
export interface PageSignIn {
  dev: boolean;
  oidc?: { issuer: string; clientId: string; scope: string; resource?: string };
}

/**
 * The Content-Security-Policy of the pages: own scripts and styles only; connections to this
 * origin (the API, and live results on /ws), the configured gateway and the identity provider.
 * `frameAncestors` is who may put the page in a frame: nobody, except embeds.
 */
export function pageCsp(publicRealtimeUrl: string, opts: { frameAncestors?: string[]; identityProvider?: string; imageHosts?: ImageHosts } = {}): string {
  const connect = ["'self'"];
  if (publicRealtimeUrl) connect.push(new URL(publicRealtimeUrl).origin);
  if (opts.identityProvider) connect.push(new URL(opts.identityProvider).origin);
  const ancestors = opts.frameAncestors === undefined ? ["'none'"] : ["'self'", ...opts.frameAncestors];
  return [
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    // Option images: https only (plain http would be mixed content), from the hosts OPTION_IMAGE_HOSTS allows.
    ["img-src 'self' data:", ...imageSources(opts.imageHosts ?? { any: true })].join(' '),
    `connect-src ${connect.join(' ')}`,
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    `frame-ancestors ${ancestors.join(' ')}`,
  ].join('; ');
}

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

export interface PagesDeps {
  publicRealtimeUrl: string;
  imageHosts?: ImageHosts;
  signIn?: PageSignIn;
  /** The origins allowed to frame a poll's embed (null: no such poll for this key, so nobody). */
  embedOriginsOf?: (pollId: number, key: string | undefined) => Promise<string[] | null>;
  root?: string;
}

/**
 * The web pages: the list of active polls (`/`), creating (`/polls/new`) and managing
 * (`/polls/mine`) polls, a poll with its vote form and live results (`/polls/:id`), its
 * moderation and analytics, the admins' review queue (`/moderation`), the embed
 * (`/embed/polls/:id`), the provider sign-in's return (`/auth/callback`), share QR codes, and
 * their assets. Read once at startup; the browser does the rest through the public API and /ws.
 */
export function pagesRouter({ publicRealtimeUrl, imageHosts, signIn = { dev: false }, embedOriginsOf = async () => [], root = webRoot() }: PagesDeps) {
  const identityProvider = signIn.oidc?.issuer;
  const csp = pageCsp(publicRealtimeUrl, { identityProvider, imageHosts });
  // Every page is layout.html (head, settings, sign-in header) around its own <main> and script.
  const settings = (html: string) =>
    html
      .replaceAll('{{REALTIME_URL}}', escapeHtml(publicRealtimeUrl))
      .replaceAll('{{DEV_SIGN_IN}}', signIn.dev ? 'on' : 'off')
      .replaceAll('{{OIDC_ISSUER}}', escapeHtml(signIn.oidc?.issuer ?? ''))
      .replaceAll('{{OIDC_CLIENT_ID}}', escapeHtml(signIn.oidc?.clientId ?? ''))
      .replaceAll('{{OIDC_SCOPE}}', escapeHtml(signIn.oidc?.scope ?? ''))
      .replaceAll('{{OIDC_RESOURCE}}', escapeHtml(signIn.oidc?.resource ?? ''));
  const layout = settings(readFileSync(path.join(root, 'layout.html'), 'utf8'));
  const embedLayout = settings(readFileSync(path.join(root, 'embed-layout.html'), 'utf8'));
  const fill = (frame: string, file: string, title: string, script: string, head = '') =>
    frame
      .replace('{{TITLE}}', title)
      .replace('{{HEAD}}', head)
      .replace('{{SCRIPT}}', script)
      .replace('{{MAIN}}', () => readFileSync(path.join(root, file), 'utf8'));
  const page = (file: string, title: string, script: string, head = '') => fill(layout, file, title, script, head);
  const pages = {
    home: page('list.html', 'Active polls', 'list.js'),
    create: page('new.html', 'Create a poll', 'new.js'),
    mine: page('mine.html', 'My polls', 'mine.js'),
    poll: page('poll.html', 'Poll', 'poll.js'),
    moderation: page('moderation.html', 'Review votes', 'moderation.js'),
    queue: page('queue.html', 'Moderation', 'queue.js'),
    analytics: page('analytics.html', 'Analytics', 'analytics.js', '<script src="/vendor/chart.umd.min.js"></script>\n'),
    callback: page('callback.html', 'Signing in', 'callback.js'),
    embed: fill(embedLayout, 'embed.html', 'Poll', 'embed.js'),
  };
  // A fixed map from file name to content: a request can only ever name one of these.
  const assets = new Map<string, { type: string; body: Buffer }>();
  for (const name of readdirSync(path.join(root, 'assets'))) {
    const type = ASSET_TYPES[path.extname(name)];
    if (type) assets.set(name, { type, body: readFileSync(path.join(root, 'assets', name)) });
  }
  const vendor = new Map<string, { type: string; body: Buffer }>();
  for (const [name, file] of vendorFiles()) vendor.set(name, { type: ASSET_TYPES[path.extname(name)], body: readFileSync(file) });

  function sendPage(res: Response, html: string, policy = csp) {
    res
      .set({
        'Content-Security-Policy': policy,
        // A PRIVATE poll's page URL carries its key: never hand it to image hosts as a Referer.
        'Referrer-Policy': 'no-referrer',
        'X-Content-Type-Options': 'nosniff',
        'Cache-Control': 'no-cache',
      })
      .type('html')
      .send(html);
  }

  const keyOf = (req: Request) => (typeof req.query.key === 'string' ? req.query.key : undefined);

  const r = Router();

  r.get('/', (_req, res) => {
    sendPage(res, pages.home);
  });

  r.get('/polls/new', (_req, res) => {
    sendPage(res, pages.create);
  });

  r.get('/polls/mine', (_req, res) => {
    sendPage(res, pages.mine);
  });

  r.get('/moderation', (_req, res) => {
    sendPage(res, pages.queue);
  });

  r.get('/auth/callback', (_req, res) => {
    sendPage(res, pages.callback);
  });

  r.get('/polls/:id', (req, res, next) => {
    if (parseId(req.params.id) === null) return next();
    sendPage(res, pages.poll);
  });

  r.get('/polls/:id/moderation', (req, res, next) => {
    if (parseId(req.params.id) === null) return next();
    sendPage(res, pages.moderation);
  });

  r.get('/polls/:id/analytics', (req, res, next) => {
    if (parseId(req.params.id) === null) return next();
    sendPage(res, pages.analytics);
  });

  r.get('/embed/polls/:id', async (req, res, next) => {
    const pollId = parseId(req.params.id);
    if (pollId === null) return next();
    try {
      const origins = (await embedOriginsOf(pollId, keyOf(req))) ?? [];
      sendPage(res, pages.embed, pageCsp(publicRealtimeUrl, { frameAncestors: origins, identityProvider, imageHosts }));
    } catch (err) {
      next(err);
    }
  });

  // The share QR code: this service's own link to the poll (and its key), as an SVG image.
  r.get('/polls/:id/qr.svg', async (req, res, next) => {
    const pollId = parseId(req.params.id);
    const key = keyOf(req);
    if (pollId === null || (key !== undefined && key.length > 200)) return next();
    const link = `${req.protocol}://${req.get('host')}/polls/${pollId}${key ? `?key=${encodeURIComponent(key)}` : ''}`;
    const svg = await QRCode.toString(link, { type: 'svg', errorCorrectionLevel: 'M', margin: 2 });
    // The Host header is the client's to set: never share one client's image with another.
    res
      .set({ 'Cache-Control': 'private, no-store', 'X-Content-Type-Options': 'nosniff', 'Content-Security-Policy': "default-src 'none'" })
      .type('image/svg+xml')
      .send(svg);
  });

  r.get('/assets/:file', (req, res, next) => {
    const asset = assets.get(req.params.file);
    if (!asset) return next();
    res.set({ 'X-Content-Type-Options': 'nosniff', 'Cache-Control': 'no-cache' }).type(asset.type).send(asset.body);
  });

  // The API's own description, for client generators and API explorers.
  const openapi = readFileSync(path.join(root, '..', 'openapi.yaml'));
  r.get('/openapi.yaml', (_req, res) => {
    res.set({ 'X-Content-Type-Options': 'nosniff', 'Cache-Control': 'no-cache', 'Access-Control-Allow-Origin': '*' }).type('application/yaml').send(openapi);
  });

  r.get('/vendor/:file', (req, res, next) => {
    const file = vendor.get(req.params.file);
    if (!file) return next();
    res.set({ 'X-Content-Type-Options': 'nosniff', 'Cache-Control': 'public, max-age=86400' }).type(file.type).send(file.body);
  });

  return r;
}
