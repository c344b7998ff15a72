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

// The dashboard's operations pages in real headless Chromium against the real server (role all,
// real database, ephemeral port): schedules, dead letters with redrive, bulk retry/cancel of the
// Jobs filter, and the Queues page kept live by the event stream rather than by polling.
// (dashboard-browser.test.ts covers sign-in, the job page, escaping and layout.)
const ADMIN = 'ops-admin-key-00001';
const READER = 'ops-reader-key-0001';
/** Screenshots for humans, git-ignored (.tmp/), as in dashboard-browser.test.ts (whose shots are the README's). */
const SHOTS = path.join(REPO, '.tmp/screenshots');
/** The fallback poll a page is given when a test must prove that an update came from the stream. */
const TEN_MINUTES_MS = 600_000;

const chromiumReady = ensureChromium();
if (!chromiumReady.ok) console.warn(`SKIPPING the dashboard operations browser tests: ${chromiumReady.reason}`);

let db: TestDatabase;
let server: RunningServer;
let browser: Browser;
let context: BrowserContext | undefined;
/** Console errors, page errors and failed requests of the current test's page. */
let problems: string[] = [];
/** Paths of the responses (headers received) of the current test's page, in order. */
let responses: string[] = [];

const call = async (method: string, p: string, body?: unknown, key = ADMIN) => {
  const res = await fetch(`${server.url}${p}`, {
    method,
    headers: { authorization: `Bearer ${key}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  return { status: res.status, body: (await res.json()) as Record<string, any> };
};
const jobState = async (id: number) => (await call('GET', `/v1/jobs/${id}`)).body.job as { state: string; queue: string; deadLetterFrom: string | null };

/** A page signed in with `key`, watched for errors; `pollMs` sets the dashboard's fallback poll. */
async function signedIn(key: string, opts: { pollMs?: number } = {}): Promise<Page> {
  context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  if (opts.pollMs !== undefined) await context.addInitScript((ms) => sessionStorage.setItem('pgdispatch.fallbackPollMs', String(ms)), opts.pollMs);
  const page = await context.newPage();
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') problems.push(`console ${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('response', (r) => responses.push(new URL(r.url()).pathname));
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
}

describe.skipIf(!chromiumReady.ok)('dashboard operations in headless Chromium', () => {
  beforeAll(async () => {
    mkdirSync(SHOTS, { recursive: true });
    db = await createTestDatabase();
    server = await startServer(parseConfig({
      DISPATCH_ROLE: 'all', DATABASE_URL: db.url, HOST: '127.0.0.1', PORT: '0',
      API_KEYS: `${ADMIN}:admin,${READER}:read`, WORKER_CONCURRENCY: '4',
      TASKS_MODULE: path.join(REPO, 'test/fixtures/dashboard-tasks.mjs'),
    }), { log: silentLogger });
    browser = await launchChromium();
  });
  afterEach(async () => {
    await context?.close();
    context = undefined;
    const seen = problems;
    problems = [];
    responses = [];
    expect(seen, 'console errors, page errors or failed requests').toEqual([]);
  });
  afterAll(async () => {
    await browser?.close();
    await server?.stop();
    await db?.drop();
  });

  it('lists a schedule created over the API with its next run time, and disables it with the button', async () => {
    const created = await call('POST', '/v1/schedules', { name: 'nightly-report', cron: '0 3 * * *', timeZone: 'Europe/Berlin', queue: 'reports-sched', task: 'noop' });
    expect(created.status).toBe(201);
    const nextRunAt = created.body.schedule.nextRunAt as string;
    const page = await signedIn(ADMIN);
    await page.getByRole('link', { name: 'Schedules' }).click();
    const row = page.locator('tr[data-schedule="nightly-report"]');
    await row.waitFor();
    const next = row.getByTestId('next-run').locator('time');
    expect(await next.getAttribute('datetime')).toBe(nextRunAt);
    expect(await next.textContent()).toBe(await page.evaluate((iso) => new Date(iso).toLocaleString(), nextRunAt));
    expect(await row.textContent()).toContain('0 3 * * *');
    expect(await row.textContent()).toContain('Europe/Berlin');
    await shot(page, 'dashboard-schedules');
    await row.getByRole('button', { name: 'Disable' }).click();
    await row.getByRole('button', { name: 'Enable' }).waitFor();
    expect((await call('GET', '/v1/schedules/nightly-report')).body.schedule.enabled).toBe(false);
  });

  it('shows a dead-lettered job on the dead-letters page and redrives it with an admin key (checked over the API)', async () => {
    await call('PUT', '/v1/queues/ops-src', { deadLetterQueue: 'ops-dead' });
    const { body } = await call('POST', '/v1/queues/ops-src/jobs', { task: 'dash.fail', payload: { n: 1 }, maxAttempts: 1 });
    const id = body.job.id as number;
    await expect.poll(async () => jobState(id), { timeout: 15_000 }).toMatchObject({ queue: 'ops-dead', state: 'failed', deadLetterFrom: 'ops-src' });
    // Paused, so the redriven job stays queued for the check instead of failing again at once.
    await call('POST', '/v1/queues/ops-src/pause');

    const reader = await signedIn(READER);
    await reader.getByRole('link', { name: 'Dead letters' }).click();
    const group = reader.locator('section[data-dlq="ops-dead"]');
    await group.locator(`tr[data-job="${id}"]`).waitFor();
    expect(await group.getByTestId('redrive').isDisabled()).toBe(true);
    expect(await group.textContent()).toContain('needs an API key with the admin scope');
    await context?.close();

    const page = await signedIn(ADMIN);
    await page.goto(`${server.url}/#/dead-letters`);
    const row = page.locator(`section[data-dlq="ops-dead"] tr[data-job="${id}"]`);
    await row.waitFor();
    expect(await row.textContent()).toContain('ops-src');
    expect(await row.textContent()).toContain('this task always fails');
    await shot(page, 'dashboard-dead-letters');
    await page.getByTestId('redrive').click();
    await page.getByTestId('redrive-confirm').click();
    await expect.poll(() => page.getByTestId('redrive-outcome').textContent()).toBe('Sent 1 job back.');
    expect(await jobState(id)).toMatchObject({ queue: 'ops-src', state: 'queued', deadLetterFrom: null });
    await expect.poll(() => row.count()).toBe(0);
  });

  it('cancels exactly the jobs of the filter in bulk after a confirmation, and says how many', async () => {
    await call('PUT', '/v1/queues/ops-bulk', {});
    await call('POST', '/v1/queues/ops-bulk/pause'); // so every job stays queued until the bulk cancel
    const mk = async (task: string, n: number) => (await call('POST', '/v1/queues/ops-bulk/jobs/batch', { jobs: Array.from({ length: n }, (_, i) => ({ task, payload: { i } })) })).body.results.map((r: { job: { id: number } }) => r.job.id) as number[];
    const doomed = await mk('ops.doomed', 5);
    const spared = await mk('ops.spared', 3);
    const elsewhere = (await call('POST', '/v1/queues/ops-bulk-other/jobs', { task: 'ops.doomed', payload: {}, delayMs: 3_600_000 })).body.job.id as number;

    const page = await signedIn(ADMIN);
    await page.getByRole('link', { name: 'Jobs', exact: true }).click();
    await page.getByRole('heading', { name: 'Jobs' }).waitFor();
    expect(await page.getByTestId('bulk-cancel').isDisabled()).toBe(true); // no filter: never "every job" in one click
    expect(await page.locator('.bulk').textContent()).toContain('set a filter first');
    await page.goto(`${server.url}/#/jobs?queue=ops-bulk&state=queued&task=ops.doomed`);
    await expect.poll(() => page.locator('tr[data-job]').count()).toBe(5);
    await page.getByTestId('bulk-cancel').click();
    const confirm = page.getByTestId('bulk-cancel-confirm');
    expect(await page.getByRole('group', { name: 'Confirm: Cancel matching…' }).textContent()).toContain('queue ops-bulk, state queued, task ops.doomed');
    // Nothing happened yet: the first press only asks.
    expect((await Promise.all(doomed.map(jobState))).every((j) => j.state === 'queued')).toBe(true);
    expect(await page.evaluate(() => document.activeElement?.getAttribute('data-testid'))).toBe('bulk-cancel-confirm');
    await shot(page, 'dashboard-bulk-confirm');
    await page.keyboard.press('Enter');
    await expect.poll(() => page.getByTestId('bulk-cancel-outcome').textContent()).toContain('Cancelled 5 jobs');
    expect(await confirm.count()).toBe(0);
    expect((await Promise.all(doomed.map(jobState))).map((j) => j.state)).toEqual(Array(5).fill('cancelled'));
    expect((await Promise.all(spared.map(jobState))).map((j) => j.state)).toEqual(Array(3).fill('queued'));
    expect((await jobState(elsewhere)).state).toBe('queued');
    await expect.poll(() => page.locator('tr[data-job]').count()).toBe(0); // the list follows (state=queued)

    // Retry of the cancelled ones, the same way: exactly those five come back.
    await page.goto(`${server.url}/#/jobs?queue=ops-bulk&state=cancelled`);
    await expect.poll(() => page.locator('tr[data-job]').count()).toBe(5);
    await page.getByTestId('bulk-retry').click();
    await page.getByTestId('bulk-retry-confirm').click();
    await expect.poll(() => page.getByTestId('bulk-retry-outcome').textContent()).toBe('Retried 5 jobs.');
    expect((await Promise.all(doomed.map(jobState))).map((j) => j.state)).toEqual(Array(5).fill('queued'));
    await call('POST', '/v1/jobs/bulk/cancel', { queue: 'ops-bulk' }); // leave nothing for the worker when resumed
  });

  it('gives a read-only key disabled bulk buttons with the reason', async () => {
    const page = await signedIn(READER);
    await page.getByRole('link', { name: 'Jobs', exact: true }).click();
    await page.getByRole('heading', { name: 'Jobs' }).waitFor();
    expect(await page.getByTestId('bulk-retry').isDisabled()).toBe(true);
    expect(await page.getByTestId('bulk-cancel').isDisabled()).toBe(true);
    expect(await page.getByTestId('bulk-cancel').getAttribute('title')).toBe('needs an API key with the admin scope');
    expect(await page.locator('.bulk').textContent()).toContain('needs an API key with the admin scope');
    expect((await call('POST', '/v1/jobs/bulk/cancel', { queue: 'ops-bulk' }, READER)).status).toBe(403);
  });

  it('keeps the queues page live from the event stream, with the fallback poll set to ten minutes', async () => {
    await call('PUT', '/v1/queues/ops-live', { rateLimit: 20, rateIntervalMs: 60_000 });
    const page = await signedIn(ADMIN, { pollMs: TEN_MINUTES_MS });
    const card = page.locator('article.queue[data-queue="ops-live"]');
    await card.waitFor();
    expect(await card.getByTestId('rate-limit').textContent()).toBe('20 / min');
    // The stream is open (its response headers came: the server subscribed first) before anything is enqueued.
    await expect.poll(() => responses.filter((p) => p === '/v1/events').length).toBe(1);
    const stats = () => responses.filter((p) => p === '/v1/stats/queues').length;
    await expect.poll(stats).toBeGreaterThan(1); // the first load and the one when the stream opened
    const before = stats();
    await call('POST', '/v1/queues/ops-live/jobs', { task: 'noop', payload: {} });
    await call('POST', '/v1/queues/ops-new/jobs', { task: 'noop', payload: {} });
    // Both changes appear (a new queue's card too) though no poll is due for ten minutes: only
    // the events of /v1/events can have asked for the refetch.
    await expect.poll(() => card.getByTestId('count-succeeded').textContent(), { timeout: 20_000 }).toBe('1');
    await expect.poll(() => page.locator('article.queue[data-queue="ops-new"] [data-testid="count-succeeded"]').textContent(), { timeout: 20_000 }).toBe('1');
    expect(stats()).toBeGreaterThan(before);
    expect(responses.filter((p) => p === '/v1/events')).toHaveLength(1); // one stream, never reopened
    expect(await page.evaluate(() => sessionStorage.getItem('pgdispatch.fallbackPollMs'))).toBe(String(TEN_MINUTES_MS));
  });
});
