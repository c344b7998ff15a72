import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { parseConfig } from '@pgdispatch/core/config';
import { silentLogger } from '@pgdispatch/core/log';
import { createTestDatabase, type TestDatabase } from '@pgdispatch/engine/testing/database';
import { startServer, type RunningServer } from '@pgdispatch/server/serve';
import { ensureChromium, launchChromium } from '../helpers/browser.js';
import { REPO } from '../helpers/processes.js';

// The dashboard in real headless Chromium against the real server (role all: api + in-process
// worker, real database, ephemeral port). One browser for the whole file; a fresh context per test.
const ADMIN = 'dash-admin-key-0001';
const READER = 'dash-reader-key-001';
/** Screenshots for humans, git-ignored (.tmp/). UPDATE_DOCS_SCREENSHOTS=1 also refreshes docs/img/. */
const SHOTS = path.join(REPO, '.tmp/screenshots');
const DOC_SHOTS = process.env.UPDATE_DOCS_SCREENSHOTS === '1' ? path.join(REPO, 'docs/img') : undefined;

const chromiumReady = ensureChromium();
if (!chromiumReady.ok) console.warn(`SKIPPING the dashboard browser tests: ${chromiumReady.reason}`);

let db: TestDatabase;
let server: RunningServer;
let browser: Browser;
let context: BrowserContext | undefined;
/** Console errors, page errors and failed requests of the current test's page. */
let problems: string[] = [];

const call = async (method: string, p: string, body?: unknown, key = ADMIN) => {
  const res = await fetch(`${server.url}${p}`, {
    method,
    headers: { authorization: `Bearer ${key}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  return { status: res.status, body: (await res.json()) as Record<string, any> };
};

/** A page signed in with `key` (typed into the form, as a person would), watched for errors. */
async function signedIn(key: string, viewport = { width: 1280, height: 800 }, colorScheme: 'light' | 'dark' = 'light'): Promise<Page> {
  context = await browser.newContext({ viewport, colorScheme });
  const page = await context.newPage();
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') problems.push(`console ${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('requestfailed', (r) => {
    // A fetch aborted on purpose (an event stream closed when leaving a page) is not a problem.
    if (!/ERR_ABORTED/.test(r.failure()?.errorText ?? '')) problems.push(`request failed: ${r.url()} ${r.failure()?.errorText}`);
  });
  await page.goto(`${server.url}/`);
  await page.getByLabel('API key').fill(key);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByTestId('scopes').waitFor();
  return page;
}

async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
  if (DOC_SHOTS) await page.screenshot({ path: path.join(DOC_SHOTS, `${name}.png`) });
}

describe.skipIf(!chromiumReady.ok)('dashboard in headless Chromium', () => {
  beforeAll(async () => {
    mkdirSync(SHOTS, { recursive: true });
    if (DOC_SHOTS) mkdirSync(DOC_SHOTS, { recursive: true });
    db = await createTestDatabase();
    const config = parseConfig({
      DISPATCH_ROLE: 'all', DATABASE_URL: db.url, HOST: '127.0.0.1', PORT: '0',
      API_KEYS: `${ADMIN}:admin,${READER}:read`, WORKER_CONCURRENCY: '4',
      TASKS_MODULE: path.join(REPO, 'test/fixtures/dashboard-tasks.mjs'),
    });
    server = await startServer(config, { log: silentLogger });
    browser = await launchChromium();
  });
  afterEach(async () => {
    await context?.close();
    context = undefined;
    const seen = problems;
    problems = [];
    expect(seen, 'console errors, page errors or failed requests').toEqual([]);
  });
  afterAll(async () => {
    await browser?.close();
    await server?.stop();
    await db?.drop();
  });

  it('asks for a key, keeps it out of the URL and localStorage, and loads the queues page without errors', async () => {
    await call('POST', '/v1/queues/emails/jobs', { task: 'noop', payload: { to: 'a@example.com' } });
    const page = await signedIn(ADMIN);
    await expect.poll(() => page.locator('article.queue[data-queue="emails"]').count()).toBe(1);
    await expect.poll(() => page.locator('[data-queue="emails"] [data-testid="count-succeeded"]').textContent(), { timeout: 10_000 }).toBe('1');
    expect(page.url()).not.toContain(ADMIN);
    expect(await page.evaluate(() => JSON.stringify(localStorage))).not.toContain(ADMIN);
    expect(await page.evaluate(() => sessionStorage.getItem('pgdispatch.apiKey'))).toBe(ADMIN);
    expect(await page.getByTestId('scopes').textContent()).toContain('admin');
  });

  it('shows a job enqueued over the API and turns it succeeded live, with progress, steps and children', async () => {
    // The queue is paused while the page opens, so the run happens in front of it.
    await call('PUT', '/v1/queues/reports', {});
    await call('POST', '/v1/queues/reports/pause');
    const page = await signedIn(ADMIN);
    await page.getByRole('link', { name: 'Jobs', exact: true }).click();
    await page.getByRole('heading', { name: 'Jobs' }).waitFor();
    const { body } = await call('POST', '/v1/queues/reports/jobs', { task: 'dash.progress', payload: { steps: 8, stepMs: 200, child: true } });
    const id = body.job.id as number;
    const row = page.locator(`tr[data-job="${id}"]`);
    await row.waitFor({ timeout: 10_000 });
    expect(await row.getByTestId('state').textContent()).toBe('queued');
    await row.getByRole('link', { name: `#${id}` }).click();
    await page.getByRole('heading', { name: new RegExp(`Job #${id}`) }).waitFor();
    await page.getByText('live', { exact: true }).waitFor();
    await call('POST', '/v1/queues/reports/resume');
    // Live: the state and the progress bar move without a reload.
    await expect.poll(() => page.locator('progress').count(), { timeout: 10_000 }).toBe(1);
    await expect.poll(() => page.getByTestId('job-state').textContent(), { timeout: 15_000 }).toBe('succeeded');
    await expect.poll(() => page.locator('progress').getAttribute('value')).toBe('8');
    await expect.poll(() => page.getByRole('cell', { name: 'prepare', exact: true }).count()).toBe(1);
    await expect.poll(() => page.locator('section', { hasText: 'Children' }).locator('tr[data-job]').count()).toBe(1);
    expect(await page.locator('.events li').count()).toBeGreaterThan(1);
    await shot(page, 'dashboard-job');
  });

  it('pauses and resumes a queue with the button (checked over the API)', async () => {
    await call('PUT', '/v1/queues/billing', { concurrencyLimit: 3, rateLimit: 100, rateIntervalMs: 60_000 });
    const page = await signedIn(ADMIN);
    const card = page.locator('article.queue[data-queue="billing"]');
    await card.waitFor();
    await card.getByRole('button', { name: 'Pause' }).click();
    await card.getByTestId('paused').waitFor();
    const paused = await call('GET', '/v1/queues');
    expect(paused.body.queues.find((q: { name: string }) => q.name === 'billing').paused).toBe(true);
    await card.getByRole('button', { name: 'Resume' }).click();
    await expect.poll(async () => (await call('GET', '/v1/queues')).body.queues.find((q: { name: string }) => q.name === 'billing').paused).toBe(false);
    expect(await card.textContent()).toContain('3'); // the concurrency limit
    expect(await card.getByTestId('rate-limit').textContent()).toBe('100 / min');
  });

  it('gives a read-only key disabled admin buttons with the reason', async () => {
    const { body } = await call('POST', '/v1/queues/readonly/jobs', { task: 'dash.fail', payload: {} });
    const page = await signedIn(READER);
    const card = page.locator('article.queue[data-queue="readonly"]');
    await card.waitFor();
    expect(await card.getByTestId('pause-toggle').isDisabled()).toBe(true);
    expect(await card.textContent()).toContain('needs an API key with the admin scope');
    await page.goto(`${server.url}/#/jobs/${body.job.id}`);
    await expect.poll(() => page.getByTestId('job-state').textContent(), { timeout: 10_000 }).toBe('failed');
    expect(await page.getByTestId('retry').isDisabled()).toBe(true);
    expect(await page.getByTestId('cancel').isDisabled()).toBe(true);
    expect(await page.getByTestId('retry').getAttribute('title')).toBe('needs an API key with the admin scope');
    // The API agrees: the same key is refused the action.
    expect((await call('POST', `/v1/jobs/${body.job.id}/retry`, undefined, READER)).status).toBe(403);
  });

  it('renders a hostile payload as text: no script runs, no element is created', async () => {
    const hostile = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2"><b>bold</b>';
    const { body } = await call('POST', '/v1/queues/hostile/jobs', { task: `<img src=x onerror="window.__pwned=3">`, payload: { html: hostile } });
    const page = await signedIn(ADMIN);
    await page.goto(`${server.url}/#/jobs/${body.job.id}`);
    const payload = page.getByTestId('payload');
    await payload.waitFor();
    expect(await payload.textContent()).toContain('<script>window.__pwned = 1</script>');
    expect(await payload.locator('script, img, b').count()).toBe(0);
    expect(await page.getByTestId('task').textContent()).toBe('<img src=x onerror="window.__pwned=3">');
    await page.goto(`${server.url}/#/jobs?queue=hostile`);
    await page.locator(`tr[data-job="${body.job.id}"]`).waitFor();
    expect(await page.locator('main img').count()).toBe(0);
    expect(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned)).toBeUndefined();
  });

  it('filters jobs by state and pages by cursor', async () => {
    await call('POST', '/v1/queues/paging/jobs/batch', { jobs: Array.from({ length: 60 }, (_, i) => ({ task: 'noop', payload: { i }, delayMs: 3_600_000 })) });
    const page = await signedIn(ADMIN);
    await page.goto(`${server.url}/#/jobs?queue=paging&state=queued`);
    await expect.poll(() => page.locator('tr[data-job]').count()).toBe(50);
    await page.getByRole('button', { name: 'Older →' }).click();
    await expect.poll(() => page.locator('tr[data-job]').count()).toBe(10);
    await page.getByRole('button', { name: '← Newer' }).click();
    await expect.poll(() => page.locator('tr[data-job]').count()).toBe(50);
    await page.getByLabel('state').selectOption('succeeded');
    await page.getByRole('button', { name: 'Apply' }).click();
    await expect.poll(() => page.locator('tr[data-job]').count()).toBe(0);
  });

  it('is usable from the keyboard, on a narrow screen and in dark mode', async () => {
    const page = await signedIn(ADMIN, { width: 390, height: 844 }, 'dark');
    await page.locator('article.queue').first().waitFor();
    // Nothing wider than the screen: cards stack, tables scroll inside their frame.
    expect(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth)).toBe(true);
    const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    expect(bg).toBe('rgb(16, 20, 27)');
    await shot(page, 'dashboard-narrow-dark');
    // Tab through the header to "Jobs" and follow it with Enter.
    let focused = '';
    for (let i = 0; i < 10 && focused !== 'Jobs'; i++) {
      await page.keyboard.press('Tab');
      focused = await page.evaluate(() => document.activeElement?.textContent ?? '');
    }
    expect(focused).toBe('Jobs');
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'Jobs' }).waitFor();
    expect(page.url()).toMatch(/#\/jobs$/);
  });

  it('lists the executors on the workers page', async () => {
    const page = await signedIn(ADMIN);
    await page.locator('article.queue').first().waitFor();
    expect(await page.getByTestId('unattended').count()).toBe(0); // role all listens on every queue
    await page.getByRole('link', { name: 'Workers' }).click();
    await expect.poll(() => page.getByRole('cell', { name: 'in-process' }).count()).toBeGreaterThan(0);
    expect(await page.getByRole('cell', { name: 'all queues (*)' }).count()).toBeGreaterThan(0);
    await page.getByRole('link', { name: 'Queues' }).click();
    await page.locator('article.queue').first().waitFor();
    await page.waitForTimeout(300); // let the sparklines draw before the picture
    await shot(page, 'dashboard-queues');
  });

  it('warns when a queue has waiting jobs and no worker listens (an api process without workers)', async () => {
    const lonelyDb = await createTestDatabase();
    const lonely = await startServer(parseConfig({
      DISPATCH_ROLE: 'api', DATABASE_URL: lonelyDb.url, HOST: '127.0.0.1', PORT: '0', API_KEYS: `${ADMIN}:admin`, WORKER_TOKEN_SECRET: 'w'.repeat(40),
    }), { log: silentLogger });
    try {
      await fetch(`${lonely.url}/v1/queues/orphans/jobs`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' }, body: JSON.stringify({ task: 'noop' }) });
      context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
      const page = await context.newPage();
      page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
      await page.goto(`${lonely.url}/`);
      await page.getByLabel('API key').fill(ADMIN);
      await page.getByRole('button', { name: 'Sign in' }).click();
      const banner = page.getByTestId('unattended');
      await banner.waitFor();
      expect(await banner.textContent()).toContain('orphans');
      expect(await page.getByTestId('unknown-tasks').textContent()).toContain('noop');
      await page.getByRole('link', { name: 'Workers' }).click();
      await page.getByText('No executor has asked for work recently').waitFor();
    } finally {
      await context?.close();
      context = undefined;
      await lonely.stop();
      await lonelyDb.drop();
    }
  });
});
