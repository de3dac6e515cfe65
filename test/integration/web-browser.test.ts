import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { parse } from 'csv-parse/sync';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRealtime, type RealtimeHandle } from '../../src/realtime/gateway.js';
import { createLogger } from '../../src/shared/logger.js';
import { launchBrowser, openPage, screenshots, seriousA11yViolations } from '../helpers/browser.js';
import { call, countersAndRecount, createPoll, eventually, freePort, startStack, tokenFor, type Stack } from '../helpers/stack.js';

/**
 * The web product in a real headless Chromium, against the real API, workers, gateway (reached
 * through the API's /ws), PostgreSQL and Redis: what a poll creator, a voter, a moderator and an
 * embedding site do, with screenshots (test-artifacts/) and axe-core on every page.
 */

const CREATOR = 7;
let stack: Stack;
let gateway: RealtimeHandle;
let gatewayPort: number;
let browser: Browser;
let creator: BrowserContext;
let voter: BrowserContext;
const a11y: Record<string, string[]> = {};

beforeAll(async () => {
  gatewayPort = await freePort();
  stack = await startStack({
    env: {
      REALTIME_UPSTREAM_URL: `http://127.0.0.1:${gatewayPort}`,
      TRUST_PROXY: 'loopback',
      MIN_RESPONSE_MS: '0',
      PREFIX_VOTES_LIMIT: '5',
      PREFIX_WINDOW_SECONDS: '300',
      ANALYTICS_ROLLUP_DELAY_MS: '100',
    },
  });
  gateway = await startRealtime(stack.config, createLogger('silent', 'test-realtime'), gatewayPort);
  browser = await launchBrowser();
  creator = await browser.newContext();
  voter = await browser.newContext();
}, 90_000);

afterAll(async () => {
  await browser?.close();
  await gateway?.close();
  await stack?.close();
});

/** A vote from its own address (TRUST_PROXY=loopback lets the test say which). */
function voteFrom(ip: string, pollId: number, body: Record<string, unknown>, userAgent = 'Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0 Safari/537.36') {
  return call(stack, 'POST', `/api/v1/polls/${pollId}/votes`, { body, headers: { 'x-forwarded-for': ip, 'user-agent': userAgent } });
}

/** Runs axe on the page as it is now and remembers the serious findings under `name`. */
async function checkA11y(page: Page, name: string) {
  a11y[name] = await seriousA11yViolations(page);
}

async function devSignIn(page: Page, sub: number, opts: { admin?: boolean } = {}) {
  if ((await page.locator('#signin').getAttribute('open')) === null) await page.locator('#signin summary').click();
  await page.locator('#dev-sub').fill(String(sub));
  if (opts.admin) await page.locator('#dev-admin').check();
  await page.locator('#dev-form button[type="submit"]').click();
  await expect.poll(() => page.locator('#token-state').textContent()).toContain(`Signed in as user ${sub}`);
}

const text = (page: Page, selector: string) => page.locator(selector).innerText();

describe('the web product in a browser', () => {
  it('dev sign-in, create a ranked poll, vote from the share link, watch it move, close, see the rounds', async () => {
    const page = await openPage(creator, `${stack.url}/polls/new`);
    // Signed out, the create page opens the sign-in menu by itself.
    await expect.poll(() => page.locator('#signin').getAttribute('open')).not.toBeNull();
    await checkA11y(page, 'new (signed out)');
    await devSignIn(page, CREATOR);
    await page.locator('#question').fill('Best editor?');
    await page.locator('input[name="poll_type"][value="RANKED"]').check();
    const inputs = page.locator('.option-text-input');
    await inputs.nth(0).fill('vim');
    await inputs.nth(1).fill('emacs');
    await page.locator('#add-option').click();
    await inputs.nth(2).fill('nano');
    await screenshots(page, 'new-poll');
    await checkA11y(page, 'new');
    await page.locator('#publish-now').click();
    await page.waitForURL(/\/polls\/\d+\?created=1/);
    const pollId = Number(new URL(page.url()).pathname.split('/')[2]);
    await expect.poll(() => text(page, '#live-status')).toBe('Live');
    await expect.poll(() => text(page, '#results')).toContain('0 votes counted');
    expect(await page.locator('#manage').isVisible()).toBe(true);
    const shareLink = await page.locator('#share-link').inputValue();
    expect(shareLink).toBe(`${stack.url}/polls/${pollId}`);
    expect(await page.locator('#embed-code').inputValue()).toContain(`/embed/polls/${pollId}`);
    // The QR code is an image this API drew.
    await expect.poll(() => page.locator('#qr').evaluate((img: HTMLImageElement) => img.complete && img.naturalWidth)).toBeGreaterThan(0);

    // A voter opens the shared link in another browser (no sign-in) and ranks with the keyboard.
    const ballot = await openPage(voter, shareLink);
    await expect.poll(() => ballot.locator('.ranking li').count()).toBe(3);
    await ballot.locator('button[aria-label="Move emacs up"]').focus();
    await ballot.keyboard.press('Enter');
    await ballot.locator('.ranking li', { hasText: 'nano' }).locator('input[type="checkbox"]').focus();
    await ballot.keyboard.press('Alt+ArrowUp');
    const order = await ballot.locator('.ranking li .option-text').allInnerTexts();
    expect(order).toEqual(['emacs', 'nano', 'vim']);
    await ballot.locator('#vote-button').focus();
    await ballot.keyboard.press('Enter');
    await expect.poll(() => text(ballot, '#vote-status')).toMatch(/received|counted/);
    await expect.poll(() => text(ballot, '#vote-status'), { timeout: 15_000 }).toBe('Thank you, your vote is counted.');
    await checkA11y(ballot, 'poll (voter)');

    // The creator's page moves by itself.
    await expect.poll(() => text(page, '#results'), { timeout: 15_000 }).toContain('1 vote counted');

    // More ballots so that the count needs a second round: vim 2, emacs 1+1, nano 1 -> nano out, emacs wins.
    const poll = (await call(stack, 'GET', `/api/v1/polls/${pollId}`)).body;
    const id = (t: string) => poll.options.find((o: { text: string }) => o.text === t).option_id;
    for (const [i, ranking] of [[id('vim'), id('nano')], [id('vim')], [id('nano'), id('emacs')], [id('emacs')]].entries()) {
      expect((await voteFrom(`198.51.${100 + i}.7`, pollId, { ranking })).status).toBe(202);
    }
    await expect.poll(() => text(page, '#results'), { timeout: 15_000 }).toContain('5 votes counted');
    await expect.poll(() => text(page, '#results'), { timeout: 15_000 }).toContain('How the winner was found');
    await screenshots(page, 'poll-ranked-live');
    await checkA11y(page, 'poll (creator, live)');

    await page.locator('#close').click();
    await page.locator('dialog.confirm button.danger').click();
    await expect.poll(() => page.locator('#final-badge').isVisible(), { timeout: 15_000 }).toBe(true);
    // Both pages show the final rounds without a reload: the voter's too.
    for (const p of [page, ballot]) {
      await expect.poll(() => text(p, '#results'), { timeout: 15_000 }).toContain('Winner after instant runoff: emacs');
      await expect.poll(() => p.locator('table.rounds thead th').allInnerTexts()).toEqual(['Option', 'Round 1', 'Round 2']);
      // Cell by cell (innerText of a row depends on layout).
      const rows = () => p.locator('table.rounds tbody tr').evaluateAll((trs) => trs.map((tr) => [...tr.children].map((c) => c.textContent)));
      await expect.poll(rows).toEqual([
        ['emacs', '2', '3'],
        ['vim', '2', '2'],
        ['nano', '1 eliminated', ''],
        ['Exhausted (no choice left)', '0', '0'],
      ]);
      expect(await text(p, '.steps')).toContain('nano is eliminated (fewest votes)');
      // The seed is out once the poll is closed, so anyone can recount.
      await p.locator('.seed summary').click();
      await expect.poll(() => p.locator('.seed code').count()).toBe(2);
    }
    await screenshots(page, 'poll-ranked-final');
    await checkA11y(page, 'poll (final)');
    expect(page.problems.errors).toEqual([]);
    expect(ballot.problems.errors).toEqual([]);
    await ballot.close();
    await page.close();
  });

  it('reveals hidden results at the close, without a reload', async () => {
    const owner = await tokenFor(CREATOR);
    const poll = await createPoll(
      stack,
      { question: 'Lunch?', options: [{ text: 'pizza' }, { text: 'salad' }], settings: { show_results_before_close: false } },
      owner,
    );
    const page = await openPage(voter, `${stack.url}/polls/${poll.poll_id}`);
    await expect.poll(() => text(page, '#results')).toContain('Results are hidden until the poll closes');
    await page.evaluate(() => ((window as unknown as { stayed: boolean }).stayed = true));
    // Keyboard voting: arrows pick a radio, Enter on the button sends.
    await page.locator('input[type="radio"]').first().focus();
    await page.keyboard.press('ArrowDown');
    await page.locator('#vote-button').focus();
    await page.keyboard.press('Enter');
    await expect.poll(() => text(page, '#vote-status'), { timeout: 15_000 }).toBe('Thank you, your vote is counted.');
    await screenshots(page, 'poll-hidden');
    await checkA11y(page, 'poll (hidden results)');
    expect(await text(page, '#results')).not.toContain('counted');

    expect((await call(stack, 'POST', `/api/v1/polls/${poll.poll_id}/close`, { token: owner })).status).toBe(200);
    await expect.poll(() => text(page, '#results'), { timeout: 15_000 }).toContain('1 vote counted');
    expect(await text(page, '#results')).toMatch(/salad\s*1 vote · 100%/);
    await expect.poll(() => page.locator('#final-badge').isVisible(), { timeout: 15_000 }).toBe(true);
    expect(await page.evaluate(() => (window as unknown as { stayed?: boolean }).stayed)).toBe(true);
    expect(page.problems.errors).toEqual([]);
    await page.close();
  });

  it('flags a burst from one /24, says "under review" to its voter, and approves it in bulk on the moderation page', async () => {
    const owner = await tokenFor(CREATOR);
    const poll = await createPoll(stack, { question: 'Tabs or spaces?', options: [{ text: 'tabs' }, { text: 'spaces' }], settings: { captcha: 'off' } }, owner);
    const [tabs, spaces] = poll.options.map((o) => o.option_id);
    // Five votes from 127.0.0.x fill the prefix's window; the browser's vote (from 127.0.0.1) crosses it.
    for (let i = 11; i <= 15; i++) expect((await voteFrom(`127.0.0.${i}`, poll.poll_id, { options: [tabs] })).status).toBe(202);
    // 127.0.0.1, not localhost (which Chromium reaches as ::1, another network).
    const held = await openPage(voter, `${stack.url.replace('localhost', '127.0.0.1')}/polls/${poll.poll_id}`);
    await held.locator('input[type="radio"]').nth(1).check();
    await held.locator('#vote-button').click();
    await expect.poll(() => text(held, '#vote-status'), { timeout: 15_000 }).toContain('Received, under review');
    await screenshots(held, 'poll-under-review');
    for (let i = 16; i <= 18; i++) expect((await voteFrom(`127.0.0.${i}`, poll.poll_id, { options: [spaces] })).status).toBe(202);
    await eventually(async () => (await call(stack, 'GET', `/api/v1/polls/${poll.poll_id}/results`)).body.pending_review === 9, 15_000, 'the burst held');

    const page = await openPage(creator, `${stack.url}/polls/${poll.poll_id}/moderation`);
    // (A failure to load says why, instead of an empty table.)
    await expect
      .poll(async () => `${await text(page, '#mod-status')}|${await page.locator('#prefixes tbody').textContent()}`)
      .toMatch(/^\|127\.0\.0\.0\/24\s*9/);
    await expect.poll(() => text(page, '#mod-total')).toBe('0');
    expect(await text(page, '#mod-pending')).toBe('9');
    expect(await page.locator('#votes tbody tr').count()).toBe(9);
    expect(await text(page, '#votes tbody')).toContain('burst from its network');
    expect(await text(page, '#votes tbody')).toContain('spaces');
    await screenshots(page, 'moderation');
    await checkA11y(page, 'moderation');

    await page.locator('#prefixes button', { hasText: 'Approve all' }).click();
    expect(await text(page, 'dialog.confirm h2')).toBe('Approve 9 votes from 127.0.0.0/24?');
    await checkA11y(page, 'moderation (confirm)');
    await page.locator('dialog.confirm button.danger').click();
    await expect.poll(() => text(page, '#mod-action')).toBe('Approved 9 votes.');
    // The counts move live, and exactly once.
    await expect.poll(() => text(page, '#mod-total'), { timeout: 15_000 }).toBe('9');
    expect(await text(page, '#mod-pending')).toBe('0');
    expect(await page.locator('#prefixes-empty').isVisible()).toBe(true);
    const counts = await countersAndRecount(stack.db, poll.poll_id);
    expect(counts.counters).toEqual(counts.recount);
    expect(counts.counters).toEqual({ [tabs]: 5, [spaces]: 4 });
    expect(counts.pending).toBe(0);
    await expect.poll(() => text(held, '#results'), { timeout: 15_000 }).toContain('9 votes counted');
    expect(page.problems.errors).toEqual([]);
    expect(held.problems.errors).toEqual([]);
    await held.close();
    await page.close();
  });

  it('runs the embed in a frame of an allowed origin, and the browser refuses it elsewhere', async () => {
    const owner = await tokenFor(CREATOR);
    const servers: http.Server[] = [];
    const framing = async () => {
      const server = http.createServer((req, res) => {
        const src = decodeURIComponent(new URL(req.url ?? '/', 'http://x').searchParams.get('src') ?? '');
        res.setHeader('content-type', 'text/html; charset=utf-8');
        res.end(`<!doctype html><title>A news site</title><h1>News</h1><iframe id="poll" title="Poll" src="${src}" width="600" height="520"></iframe>`);
      });
      servers.push(server);
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    };
    try {
      const allowed = await framing();
      const other = await framing();
      const poll = await createPoll(stack, { question: 'Coffee or tea?', options: [{ text: 'coffee' }, { text: 'tea' }] }, owner);
      // The creator allows the news site from the poll page, while the poll runs.
      const manage = await openPage(creator, `${stack.url}/polls/${poll.poll_id}`);
      await manage.locator('#embed-origins').fill(`${allowed}/`);
      await manage.locator('#embed-form button').click();
      await expect.poll(() => text(manage, '#embed-note')).toBe(`Browsers show the embed only on ${allowed} (the poll's embed origins).`);
      const embedUrl = await manage
        .locator('#embed-code')
        .inputValue()
        .then((code) => /src="([^"]+)"/.exec(code)![1]);
      expect(embedUrl).toBe(`${stack.url}/embed/polls/${poll.poll_id}`);
      await manage.close();
      const csp = (await call<string>(stack, 'GET', `/embed/polls/${poll.poll_id}`)).headers.get('content-security-policy');
      expect(csp).toContain(`frame-ancestors 'self' ${allowed}`);

      const site = await openPage(voter, `${allowed}/?src=${encodeURIComponent(embedUrl)}`);
      const frame = site.frameLocator('#poll');
      await expect.poll(() => frame.locator('#question').innerText()).toBe('Coffee or tea?');
      await frame.locator('input[type="radio"]').nth(1).check();
      await frame.locator('#vote-button').click();
      await expect.poll(() => frame.locator('#vote-status').innerText(), { timeout: 15_000 }).toBe('Thank you, your vote is counted.');
      await expect.poll(() => frame.locator('#results').innerText(), { timeout: 15_000 }).toContain('1 vote counted');
      await screenshots(site, 'embed-allowed');
      expect(site.problems.errors).toEqual([]);
      const embed = await openPage(voter, embedUrl);
      await expect.poll(() => text(embed, '#results')).toContain('1 vote counted');
      await checkA11y(embed, 'embed');
      await embed.close();

      const refused: string[] = [];
      const elsewhere = await openPage(voter, '', [/frame-ancestors/]);
      elsewhere.on('console', (m) => refused.push(m.text()));
      await elsewhere.goto(`${other}/?src=${encodeURIComponent(embedUrl)}`);
      await expect.poll(() => refused.join('\n'), { timeout: 10_000 }).toMatch(/frame-ancestors/);
      // Nothing of the poll rendered in any frame of that page.
      for (const f of elsewhere.frames()) expect(await f.locator('#question').count()).toBe(0);
      await screenshots(elsewhere, 'embed-refused');
      await site.close();
      await elsewhere.close();
    } finally {
      for (const s of servers) s.close();
    }
  });

  it('draws the analytics charts and downloads the CSV with option texts', async () => {
    const owner = await tokenFor(CREATOR);
    const poll = await createPoll(stack, { question: 'Favourite season?', options: [{ text: 'spring' }, { text: 'autumn' }] }, owner);
    const [spring, autumn] = poll.options.map((o) => o.option_id);
    const phone = 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Version/17.0 Mobile/15E148 Safari/604.1';
    // Addresses the bundled GeoLite2 database places in different countries.
    expect((await voteFrom('8.8.8.8', poll.poll_id, { options: [spring] })).status).toBe(202);
    expect((await voteFrom('81.2.69.142', poll.poll_id, { options: [autumn] }, phone)).status).toBe(202);
    expect((await voteFrom('1.1.1.1', poll.poll_id, { options: [autumn] }, phone)).status).toBe(202);
    await eventually(
      async () => (await call(stack, 'GET', `/api/v1/polls/${poll.poll_id}/analytics`, { token: owner })).body.total_votes === 3,
      20_000,
      'the analytics rollup',
    );

    const page = await openPage(creator, `${stack.url}/polls/${poll.poll_id}/analytics`);
    await expect.poll(() => page.locator('#analytics').isVisible()).toBe(true);
    await expect.poll(() => text(page, '#figures')).toContain('Votes counted\n3');
    // Four charts, each with data, each drawn (pixels on its canvas).
    const drawn = await page.evaluate(() => {
      const Chart = (window as unknown as { Chart: { getChart(c: HTMLCanvasElement): { data: { datasets: Array<{ data: number[] }> } } | undefined } }).Chart;
      return [...document.querySelectorAll('canvas')].map((c) => {
        const chart = Chart.getChart(c as HTMLCanvasElement);
        const pixels = (c as HTMLCanvasElement).getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
        let painted = 0;
        for (let i = 3; i < pixels.length; i += 4) if (pixels[i] > 0) painted++;
        return { id: c.id, total: chart?.data.datasets[0].data.reduce((a, b) => a + b, 0), painted, label: c.getAttribute('aria-label') };
      });
    });
    expect(drawn.map((d) => d.id)).toEqual(['chart-time', 'chart-countries', 'chart-devices', 'chart-ballots']);
    for (const d of drawn) expect(d.painted, d.id).toBeGreaterThan(500);
    expect(drawn.find((d) => d.id === 'chart-time')!.total).toBe(3);
    expect(drawn.find((d) => d.id === 'chart-countries')!.total).toBe(3);
    expect(drawn.find((d) => d.id === 'chart-devices')!.label).toMatch(/mobile 2/);
    await screenshots(page, 'analytics');
    await checkA11y(page, 'analytics');

    const [download] = await Promise.all([page.waitForEvent('download'), page.locator('#download-csv').click()]);
    expect(download.suggestedFilename()).toBe(`poll-${poll.poll_id}-votes.csv`);
    const rows = parse(readFileSync((await download.path())!, 'utf8'), { columns: true }) as Array<Record<string, string>>;
    expect(rows).toHaveLength(3);
    expect(rows.map((r) => r.choice_texts).sort()).toEqual(['autumn', 'autumn', 'spring']);
    await expect.poll(() => text(page, '#csv-status')).toContain(`Downloaded poll-${poll.poll_id}-votes.csv`);
    expect(page.problems.errors).toEqual([]);
    await page.close();
  });

  it('manages "My polls": a draft published, its end extended, then closed; the admin queue lists held votes', async () => {
    const page = await openPage(creator, `${stack.url}/polls/new`);
    await page.locator('#question').fill('Team offsite: where?');
    await page.locator('input[name="poll_type"][value="MULTIPLE_CHOICE"]').check();
    const inputs = page.locator('.option-text-input');
    await inputs.nth(0).fill('mountains');
    await inputs.nth(1).fill('seaside');
    await page.locator('#add-option').click();
    await inputs.nth(2).fill('city');
    await page.locator('#max-choices').fill('2');
    await page.locator('#visibility').selectOption('PRIVATE');
    await page.locator('#save-draft').click();
    await page.waitForURL(/\/polls\/\d+\?created=1&key=/);
    const pollId = Number(new URL(page.url()).pathname.split('/')[2]);
    expect(await text(page, '#manage-state')).toContain('Draft');

    await page.goto(`${stack.url}/polls/mine`);
    const row = page.locator('#mine li', { hasText: 'Team offsite: where?' });
    await expect.poll(() => row.locator('.badge').innerText()).toBe('Draft');
    await screenshots(page, 'my-polls');
    await checkA11y(page, 'my polls');
    await row.locator('button', { hasText: 'Publish' }).click();
    await expect.poll(() => page.locator('#mine li', { hasText: 'Team offsite: where?' }).locator('.badge').innerText()).toBe('Open');
    const end = new Date(Date.now() + 3 * 86_400_000);
    const local = `${end.getFullYear()}-${String(end.getMonth() + 1).padStart(2, '0')}-${String(end.getDate()).padStart(2, '0')}T12:00`;
    const open = page.locator('#mine li', { hasText: 'Team offsite: where?' });
    await open.locator('input[type="datetime-local"]').fill(local);
    await open.locator('form button').click();
    await expect
      .poll(async () => (await call(stack, 'GET', `/api/v1/polls/${pollId}`, { token: await tokenFor(CREATOR) })).body.end_time)
      .toBe(new Date(local).toISOString());

    // The private link carries the key; a voter picks two options (the third is then disabled).
    const poll = (await call(stack, 'GET', `/api/v1/polls/${pollId}`, { token: await tokenFor(CREATOR) })).body;
    const ballot = await openPage(voter, `${stack.url}/polls/${pollId}?key=${poll.access_key}`);
    await ballot.locator('.choice', { hasText: 'mountains' }).locator('input').check();
    await ballot.locator('.choice', { hasText: 'city' }).locator('input').check();
    expect(await ballot.locator('.choice', { hasText: 'seaside' }).locator('input').isDisabled()).toBe(true);
    await ballot.locator('#vote-button').click();
    await expect.poll(() => text(ballot, '#vote-status'), { timeout: 15_000 }).toBe('Thank you, your vote is counted.');
    await expect.poll(() => text(ballot, '#results'), { timeout: 15_000 }).toContain('100% of voters (1 of 1) · 50% of selections');
    await screenshots(ballot, 'poll-multiple');

    await open.locator('button', { hasText: 'Close' }).click();
    await page.locator('dialog.confirm button.danger').click();
    await expect.poll(() => page.locator('#mine li', { hasText: 'Team offsite: where?' }).locator('.badge').innerText()).toBe('Closed');
    expect(page.problems.errors).toEqual([]);

    // An admin sees every poll with held votes (the burst of the moderation test was approved; hold a new one).
    const owner = await tokenFor(CREATOR);
    const burst = await createPoll(stack, { question: 'Held for the admin', options: [{ text: 'a' }, { text: 'b' }], settings: { captcha: 'off' } }, owner);
    for (let i = 1; i <= 6; i++) expect((await voteFrom(`192.0.2.${i}`, burst.poll_id, { options: [burst.options[0].option_id] })).status).toBe(202);
    await eventually(async () => (await call(stack, 'GET', `/api/v1/polls/${burst.poll_id}/results`)).body.pending_review === 6, 15_000, 'the burst held');
    const admin = await browser.newContext();
    const queue = await openPage(admin, `${stack.url}/moderation`);
    await devSignIn(queue, 1, { admin: true });
    await expect.poll(() => text(queue, '#queue')).toContain('Held for the admin');
    expect(await text(queue, '#queue')).toContain('6 held votes');
    expect(await queue.locator('#nav-moderation').isVisible()).toBe(true);
    await screenshots(queue, 'moderation-queue');
    await checkA11y(queue, 'moderation queue');
    const list = await openPage(admin, `${stack.url}/`);
    await expect.poll(() => text(list, '#polls')).toContain('Held for the admin');
    await screenshots(list, 'list');
    await checkA11y(list, 'list');
    expect(queue.problems.errors).toEqual([]);
    await admin.close();
    await ballot.close();
    await page.close();
  });

  it('falls back to GET /results every few seconds while the gateway is down', async () => {
    const owner = await tokenFor(CREATOR);
    const poll = await createPoll(stack, { question: 'Still counting?', options: [{ text: 'yes' }, { text: 'no' }] }, owner);
    await gateway.close();
    const page = await openPage(voter, `${stack.url}/polls/${poll.poll_id}`, [/WebSocket/, /502/]);
    await expect.poll(() => text(page, '#live-status'), { timeout: 15_000 }).toContain('Live updates unavailable; refreshing every 5 s');
    expect((await voteFrom('203.0.113.200', poll.poll_id, { options: [poll.options[0].option_id] })).status).toBe(202);
    await expect.poll(() => text(page, '#results'), { timeout: 20_000 }).toContain('1 vote counted');
    await screenshots(page, 'poll-polling');
    // Back up: the page goes live again by itself.
    gateway = await startRealtime(stack.config, createLogger('silent', 'test-realtime'), gatewayPort);
    await expect.poll(() => text(page, '#live-status'), { timeout: 40_000 }).toBe('Live');
    expect(page.problems.errors).toEqual([]);
    await page.close();
  });

  it('has no serious or critical accessibility violations on any page', () => {
    expect(Object.keys(a11y).length).toBeGreaterThanOrEqual(12);
    expect(a11y).toEqual(Object.fromEntries(Object.keys(a11y).map((k) => [k, []])));
  });
});
