import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { exportJWK, generateKeyPair, jwtVerify, SignJWT, type JWK } from 'jose';
import Provider from 'oidc-provider';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchBrowser, openPage, screenshots, seriousA11yViolations } from '../helpers/browser.js';
import { startRealtime as startGateway, watch } from '../helpers/realtime.js';
import { call, freePort, JWT_SECRET, startStack, tokenFor, type Stack } from '../helpers/stack.js';

/**
 * Signing in: HS256 tokens (`npm run token`, the development sign-in) and, beside them, tokens
 * of a real OpenID provider (oidc-provider, started here) verified through its JWKS, with the
 * pages signing in through it (authorization code + PKCE). Tokens issued in the future are refused.
 */

const AUDIENCE = 'https://polls.test/api';
const CLIENT_ID = 'polls-web';
let stack: Stack;
let provider: Provider;
let providerServer: ReturnType<Provider['listen']>;
let issuer: string;
let browser: Browser;
const keys: { rsa: { priv: CryptoKey; jwk: JWK }; ec: { priv: CryptoKey; jwk: JWK } } = {} as never;

async function keyPair(alg: 'RS256' | 'ES256', kid: string) {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const jwk = { ...(await exportJWK(privateKey)), kid, alg, use: 'sig' };
  void publicKey;
  return { priv: privateKey, jwk };
}

/** A token signed with one of the provider's own keys (as the provider would sign it). */
function providerToken(key: 'rsa' | 'ec', claims: Record<string, unknown>, opts: { iss?: string; aud?: string; sub?: string; iat?: number } = {}) {
  const k = keys[key];
  let jwt = new SignJWT(claims)
    .setProtectedHeader({ alg: k.jwk.alg!, kid: k.jwk.kid })
    .setSubject(opts.sub ?? '42')
    .setIssuer(opts.iss ?? issuer)
    .setAudience(opts.aud ?? AUDIENCE)
    .setExpirationTime('10m');
  jwt = opts.iat === undefined ? jwt.setIssuedAt() : jwt.setIssuedAt(opts.iat);
  return jwt.sign(k.priv);
}

beforeAll(async () => {
  const port = await freePort();
  issuer = `http://localhost:${port}`;
  keys.rsa = await keyPair('RS256', 'rsa-1');
  keys.ec = await keyPair('ES256', 'ec-1');
  stack = await startStack({
    workers: false,
    env: {
      JWT_JWKS_URL: `${issuer}/jwks`,
      JWT_ISSUER: issuer,
      JWT_AUDIENCE: AUDIENCE,
      OIDC_CLIENT_ID: CLIENT_ID,
      OIDC_SCOPE: 'openid polls',
      REALTIME_UPSTREAM_URL: '',
    },
  });
  provider = new Provider(issuer, {
    clients: [
      {
        client_id: CLIENT_ID,
        token_endpoint_auth_method: 'none',
        redirect_uris: [`${stack.url}/auth/callback`],
        grant_types: ['authorization_code'],
        response_types: ['code'],
      },
    ],
    jwks: { keys: [keys.rsa.jwk, keys.ec.jwk] },
    cookies: { keys: ['a-test-cookie-key-a-test-cookie-key'] },
    // The login form of oidc-provider's development interactions takes any name: the account id.
    findAccount: async (_ctx, id) => ({ accountId: id, claims: async () => ({ sub: id }) }),
    features: {
      devInteractions: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => AUDIENCE,
        useGrantedResource: () => true,
        getResourceServerInfo: () => ({ scope: 'polls', audience: AUDIENCE, accessTokenFormat: 'jwt', jwt: { sign: { alg: 'ES256' } } }),
      },
    },
    // The host platform says who moderates: here, account 42 is an admin of organization 3.
    extraTokenClaims: async (_ctx, token) => ((token as { accountId?: string }).accountId === '42' ? { org: 3, role: 'admin' } : {}),
    clientBasedCORS: (_ctx, origin) => origin === new URL(stack.url).origin,
    pkce: { required: () => true },
    ttl: { AccessToken: 600, AuthorizationCode: 60, Grant: 600, IdToken: 600, Interaction: 600, Session: 600 },
  });
  // The provider warns about development-only defaults; the test means them.
  provider.on('server_error', (_ctx, err) => console.error('oidc-provider', err));
  providerServer = provider.listen(port);
  browser = await launchBrowser();
}, 90_000);

afterAll(async () => {
  await browser?.close();
  await new Promise((resolve) => providerServer?.close(resolve));
  await stack?.close();
});

describe('provider tokens (JWKS)', () => {
  it('accepts RS256 and ES256 tokens of the provider, with its org and role claims', async () => {
    for (const key of ['rsa', 'ec'] as const) {
      const token = await providerToken(key, { org: 3, role: 'admin' });
      const res = await call(stack, 'GET', '/api/v1/admin/flagged-votes', { token });
      expect(res.status, key).toBe(200);
      const mine = await call(stack, 'GET', '/api/v1/polls?creator=me', { token });
      expect(mine.status, key).toBe(200);
    }
    // HS256 keeps working beside them.
    expect((await call(stack, 'GET', '/api/v1/polls?creator=me', { token: await tokenFor(5) })).status).toBe(200);
  });

  it('refuses a wrong audience, a wrong issuer, a foreign key, a non-numeric sub and alg confusion', async () => {
    const foreign = await keyPair('ES256', 'ec-1');
    const cases = {
      audience: await providerToken('ec', {}, { aud: 'https://other.test' }),
      issuer: await providerToken('ec', {}, { iss: 'https://evil.test' }),
      sub: await providerToken('rsa', {}, { sub: 'alice' }),
      foreignKey: await new SignJWT({})
        .setProtectedHeader({ alg: 'ES256', kid: 'ec-1' })
        .setSubject('42')
        .setIssuer(issuer)
        .setAudience(AUDIENCE)
        .setExpirationTime('10m')
        .sign(foreign.priv),
      // An HS256 token "signed" with the provider's public key material must not pass as the provider's.
      confusion: await new SignJWT({})
        .setProtectedHeader({ alg: 'HS256' })
        .setSubject('42')
        .setExpirationTime('10m')
        .sign(new TextEncoder().encode(JSON.stringify(keys.rsa.jwk.n))),
      none: `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from('{"sub":"42"}').toString('base64url')}.`,
    };
    for (const [name, token] of Object.entries(cases)) {
      const res = await call(stack, 'GET', '/api/v1/polls?creator=me', { token });
      expect(res.status, name).toBe(401);
      expect(res.body.error.code, name).toBe('INVALID_TOKEN');
    }
  });

  it('refuses tokens issued in the future beyond the clock skew (API and gateway)', async () => {
    const now = Math.floor(Date.now() / 1000);
    const future = await new SignJWT({})
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('5')
      .setIssuedAt(now + 3600)
      .setExpirationTime(now + 7200)
      .sign(new TextEncoder().encode(JWT_SECRET));
    const skewed = await new SignJWT({})
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('5')
      .setIssuedAt(now + 20)
      .setExpirationTime(now + 7200)
      .sign(new TextEncoder().encode(JWT_SECRET));
    const res = await call(stack, 'GET', '/api/v1/polls?creator=me', { token: future });
    expect(res.status).toBe(401);
    expect(res.body.error).toEqual({ code: 'INVALID_TOKEN', message: 'The token was issued in the future' });
    expect((await call(stack, 'GET', '/api/v1/polls?creator=me', { token: await providerToken('ec', {}, { iat: now + 3600 }) })).status).toBe(401);
    // A clock a few seconds ahead is normal.
    expect((await call(stack, 'GET', '/api/v1/polls?creator=me', { token: skewed })).status).toBe(200);

    const gateway = await startGateway(stack.config);
    try {
      const created = await call(stack, 'POST', '/api/v1/polls', {
        token: await tokenFor(5),
        body: { question: 'q', poll_type: 'SINGLE_CHOICE', options: [{ text: 'a' }, { text: 'b' }], status: 'ACTIVE' },
      });
      const refused = watch(gateway, { poll_id: created.body.poll_id, token: future });
      expect(await refused.ended).toEqual({ code: 4401, reason: 'INVALID_TOKEN' });
      const ok = watch(gateway, { poll_id: created.body.poll_id, token: skewed });
      await ok.waitFor((m) => m.type === 'results');
      ok.close();
    } finally {
      await gateway.close();
    }
  });
});

describe('development sign-in', () => {
  it('POST /api/v1/dev/token mints what npm run token prints', async () => {
    const res = await call(stack, 'POST', '/api/v1/dev/token', { body: { sub: 9, org: 4, admin: true } });
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const { payload } = await jwtVerify(res.body.token, new TextEncoder().encode(JWT_SECRET));
    expect(payload).toMatchObject({ sub: '9', org: 4, role: 'admin' });
    expect(payload.exp! * 1000).toBe(Date.parse(res.body.expires_at));
    expect((await call(stack, 'GET', '/api/v1/admin/flagged-votes', { token: res.body.token })).status).toBe(200);
    const bad = await call(stack, 'POST', '/api/v1/dev/token', { body: { sub: 0 } });
    expect(bad.status).toBe(400);
    expect(bad.body.error.field).toBe('sub');

    const cli = fileURLToPath(new URL('../../src/api/token-cli.ts', import.meta.url));
    const run = (args: string[]) => promisify(execFile)(process.execPath, ['--import', 'tsx', cli, ...args], { env: { ...process.env, JWT_SECRET } });
    const { stdout } = await run(['--sub', '1', '--org', '3', '--admin']);
    const printed = await jwtVerify(stdout.trim(), new TextEncoder().encode(JWT_SECRET));
    expect(printed.payload).toMatchObject({ sub: '1', org: 3, role: 'admin' });
    const plain = await jwtVerify((await run(['--sub', '2'])).stdout.trim(), new TextEncoder().encode(JWT_SECRET));
    expect(plain.payload.role).toBeUndefined();
    expect(plain.payload.org).toBeUndefined();
    await expect(run(['--sub', 'x'])).rejects.toMatchObject({ code: 2 });
  });

  it('does not exist in production', async () => {
    const production = await startStack({ workers: false, env: { NODE_ENV: 'production', REALTIME_UPSTREAM_URL: '' } });
    try {
      const res = await call(production, 'POST', '/api/v1/dev/token', { body: { sub: 1 } });
      expect(res.status).toBe(404);
      const page = await call<string>(production, 'GET', '/');
      expect(page.body).toContain('<meta name="dev-sign-in" content="off">');
    } finally {
      await production.close();
    }
    expect((await call<string>(stack, 'GET', '/')).body).toContain('<meta name="dev-sign-in" content="on">');
  });
});

describe('signing in through the provider in a browser', () => {
  it('authorization code + PKCE: login at the provider, back signed in, the API takes the token', async () => {
    const context = await browser.newContext();
    const page = await openPage(context, `${stack.url}/polls/new`);
    await expect.poll(() => page.locator('#oidc-signin').isVisible()).toBe(true);
    await screenshots(page, 'signin-menu');
    expect(await seriousA11yViolations(page)).toEqual([]);
    await page.locator('#oidc-signin').click();
    await page.waitForURL(new RegExp(`^${issuer}/interaction/`));
    await page.locator('input[name="login"]').fill('42');
    await page.locator('input[name="password"]').fill('anything');
    await page.locator('button[type="submit"]').click();
    // The provider's consent screen (its development interactions), then back to our callback.
    await page.locator('button[type="submit"]', { hasText: 'Continue' }).click();
    await page.waitForURL(`${stack.url}/polls/new`);
    await expect.poll(() => page.locator('#token-state').innerText()).toBe('Signed in as user 42 (admin)');
    const token = await page.evaluate(() => localStorage.getItem('polls.token'));
    const [header] = token!.split('.');
    expect(JSON.parse(Buffer.from(header, 'base64url').toString())).toMatchObject({ alg: 'ES256' });
    // The provider's token creates a poll through the page.
    await page.locator('#question').fill('Signed in by the provider?');
    const inputs = page.locator('.option-text-input');
    await inputs.nth(0).fill('yes');
    await inputs.nth(1).fill('no');
    await page.locator('#publish-now').click();
    await page.waitForURL(/\/polls\/\d+\?created=1/);
    const pollId = Number(new URL(page.url()).pathname.split('/')[2]);
    expect((await call(stack, 'GET', `/api/v1/polls/${pollId}`)).body.creator_id).toBe(42);
    // Without a gateway here (no forwarding), the page falls back to polling, and still shows results.
    await expect.poll(() => page.locator('#results').innerText(), { timeout: 15_000 }).toContain('0 votes counted');
    // Our pages had no problem (the provider's own pages are not ours to judge).
    expect(page.problems.errors.filter((e) => !e.includes(`(on ${issuer}`) && !/WebSocket|404/.test(e))).toEqual([]);
    await context.close();
  });

  it('refuses a callback it did not start', async () => {
    const context = await browser.newContext();
    const page = await openPage(context, `${stack.url}/auth/callback?code=abc&state=forged`);
    await expect.poll(() => page.locator('#callback-status').innerText()).toContain('was not started here');
    expect(await page.evaluate(() => localStorage.getItem('polls.token'))).toBeNull();
    await context.close();
  });
});
