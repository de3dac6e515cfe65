import { mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

/** Debian's chromium, as .ci/run installs it. */
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/** Where screenshots go (gitignored): look at them after a run. */
export const ARTIFACTS = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../test-artifacts');

/** A real headless Chromium. */
export function launchBrowser(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, args: ARGS, headless: true });
}

export const DESKTOP = { width: 1280, height: 900 };
export const PHONE = { width: 390, height: 844 };

/** Everything a page complained about: console errors, uncaught exceptions, CSP violations, failed requests. */
export interface PageProblems {
  errors: string[];
}

/**
 * A page that records its problems; a test asserts none happened. CSP violations are reported
 * by the page itself (securitypolicyviolation), so a blocked script or style is an error here.
 */
export async function openPage(context: BrowserContext, url: string, allow: RegExp[] = []): Promise<Page & { problems: PageProblems }> {
  const page = (await context.newPage()) as Page & { problems: PageProblems };
  page.problems = { errors: [] };
  const record = (text: string) => {
    if (!allow.some((re) => re.test(text))) page.problems.errors.push(`${text} (on ${page.url()})`);
  };
  page.on('console', (m) => {
    if (m.type() === 'error') record(`console: ${m.text()}${m.location().url ? ` @ ${m.location().url}` : ''}`);
  });
  page.on('pageerror', (err) => record(`pageerror: ${err.message}`));
  await page.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => console.error(`CSP violation: ${e.violatedDirective} ${e.blockedURI}`));
  });
  if (url) await page.goto(url);
  return page;
}

/** Saves a screenshot of the whole page at desktop and phone size into test-artifacts/. */
export async function screenshots(page: Page, name: string): Promise<void> {
  mkdirSync(ARTIFACTS, { recursive: true });
  const before = page.viewportSize() ?? DESKTOP;
  for (const [label, size] of [
    ['desktop', DESKTOP],
    ['phone', PHONE],
  ] as const) {
    await page.setViewportSize(size);
    // Layout and charts settle after a resize.
    await page.waitForTimeout(300);
    await page.screenshot({ path: path.join(ARTIFACTS, `${name}-${label}.png`), fullPage: true });
  }
  await page.setViewportSize(before);
}

const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

/**
 * Runs axe-core in the page (evaluated through the DevTools protocol, which the page's CSP does
 * not govern) and returns the serious and critical violations, one line each.
 */
export async function seriousA11yViolations(page: Page): Promise<string[]> {
  await page.evaluate(axeSource);
  const violations = await page.evaluate(async () => {
    const axe = (
      window as unknown as {
        axe: {
          run: (
            ctx: Document,
            opts: object,
          ) => Promise<{ violations: Array<{ id: string; impact: string; help: string; nodes: Array<{ target: string[] }> }> }>;
        };
      }
    ).axe;
    const result = await axe.run(document, { resultTypes: ['violations'] });
    return result.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, targets: v.nodes.slice(0, 3).map((n) => n.target.join(' ')) }));
  });
  return violations.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => `${v.impact} ${v.id}: ${v.help} (${v.targets.join(', ')})`);
}
