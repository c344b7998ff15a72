import { execFileSync } from 'node:child_process';
import { mkdir, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { BACKLOG_PROFILES, ENQUEUE_TARGETS, WORKER_PROFILES } from '../systems/index.js';
import { serverPending } from '../systems/pgdispatch-server.js';
import type { BenchContext, EnqueueTarget, WorkerProfile } from '../systems/types.js';
import { makeBacklogTemplate, measureBacklog } from '../workloads/backlog.js';
import { measureEnqueue } from '../workloads/enqueue.js';
import { LIMITED_SYSTEMS } from '../workloads/limited.js';
import { measureLatency } from '../workloads/latency.js';
import { measurePgbench } from '../workloads/pgbench.js';
import { measureProcessing } from '../workloads/processing.js';
import { measurePullers, type PullerMode } from '../workloads/pullers.js';
import { measureSoak } from '../workloads/soak.js';
import { allThroughput } from '../systems/pgdispatch-all.js';
import { median } from './stats.js';
import type { BenchOptions } from './options.js';
import { openTarget, type PgTarget } from './pg-target.js';
import { REPO_ROOT } from './proc.js';
import { emptyResults, type BenchResults, type Cell, type SoakCell } from './results.js';

/** Rotates `items` by `round` so no system always runs first (interleaved rounds). */
function rotate<T>(items: readonly T[], round: number): T[] {
  if (items.length === 0) return [];
  const k = round % items.length;
  return [...items.slice(k), ...items.slice(0, k)];
}

function errMessage(err: unknown): string {
  return err instanceof Error ? err.message.split('\n').slice(0, 6).join('\n') : String(err);
}

async function packageVersion(name: string): Promise<string> {
  try {
    const pkg = JSON.parse(await readFile(path.join(REPO_ROOT, 'node_modules', name, 'package.json'), 'utf8')) as { version: string };
    return pkg.version;
  } catch {
    return 'not installed';
  }
}

/** HEAD, with `+dirty` when the product's sources differ from it (the build includes them). */
function gitCommit(): string {
  try {
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: REPO_ROOT, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'packages', 'apps', 'migrations'], { cwd: REPO_ROOT, encoding: 'utf8' }).trim();
    return dirty ? `${head}+dirty` : head;
  } catch {
    return 'unknown';
  }
}

export interface RunHooks {
  log?: (line: string) => void;
  /** Use this server instead of opening one from options (tests). */
  target?: PgTarget;
  /** Extra node flags for spawned processes (--cpu-prof). */
  nodeArgs?: string[];
  profileDir?: string;
  command?: string;
}

/**
 * Runs the whole bench: per round, every workload, every system in a rotated order, each in a
 * fresh database. A failing measurement is recorded in its cell and the run goes on.
 */
export async function runBench(opts: BenchOptions, hooks: RunHooks = {}): Promise<BenchResults> {
  const log = hooks.log ?? (opts.verbose ? (l: string) => process.stderr.write(`${l}\n`) : () => {});
  const target = hooks.target ?? (await openTarget(opts.databaseUrl, log));
  const ctx: BenchContext = { target, log, nodeArgs: hooks.nodeArgs ?? [], ...(hooks.profileDir ? { profileDir: hooks.profileDir } : {}) };
  const results = emptyResults({
    startedAt: new Date().toISOString(),
    command: hooks.command ?? 'npm run bench',
    options: { ...opts },
    machine: { nproc: os.availableParallelism(), cpu: os.cpus()[0]?.model ?? '?', memGiB: Math.round(os.totalmem() / 2 ** 30), node: process.version, os: `${os.type()} ${os.release()}`, loadavgStart: os.loadavg() },
    postgres: { kind: target.kind, version: target.version, pgss: target.pgss, ...(target.pgssReason ? { pgssReason: target.pgssReason } : {}), settings: target.settings },
    versions: {
      pgdispatch: gitCommit(),
      'pg-boss': await packageVersion('pg-boss'),
      'graphile-worker': await packageVersion('graphile-worker'),
    },
  });
  const want = (id: string) => opts.systems.length === 0 || opts.systems.some((s) => id.toLowerCase().includes(s.toLowerCase()));
  const enqueueTargets = ENQUEUE_TARGETS.filter((t) => want(t.id));
  const profiles = WORKER_PROFILES.filter((p) => want(p.id) && (!opts.smoke || p.kind !== 'bounded'));
  const backlogProfiles = BACKLOG_PROFILES.filter((p) => want(p.id));
  const timeoutMs = Math.max(120_000, (opts.n / 200) * 1000);

  const attempt = async (cell: Cell, label: string, pending: string | undefined, fn: () => Promise<void>) => {
    if (pending) {
      cell.pending = pending;
      return;
    }
    const t0 = performance.now();
    try {
      await fn();
      log(`  ${label} (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
    } catch (err) {
      cell.errors.push(errMessage(err));
      log(`  ${label}: ERROR ${errMessage(err)}`);
    }
  };

  /**
   * The soak's offered rate is SOAK_RATE_FRACTION of `all (throughput)`'s maximum: SOAK_RATE when
   * set, else this run's processing figure, else a short processing run of SOAK_CALIBRATE_N jobs.
   * SOAK_MAX_SECONDS bounds all of it.
   */
  const soak = async () => {
    const deadline = performance.now() + opts.soakMaxSeconds * 1000;
    const measured = median(results.processing[allThroughput.id]?.rate ?? []);
    const cell: SoakCell = (results.soak = { profile: allThroughput.id, maxRate: Number.NaN, maxSource: '', fraction: opts.soakRateFraction, retentionSeconds: opts.soakRetentionSeconds, errors: [], runs: [] });
    await attempt(cell, `soak ${allThroughput.id}`, allThroughput.pending(), async () => {
      if (opts.soakRate > 0) {
        cell.maxRate = opts.soakRate / opts.soakRateFraction;
        cell.maxSource = `SOAK_RATE=${opts.soakRate}`;
      } else if (Number.isFinite(measured)) {
        cell.maxRate = measured;
        cell.maxSource = 'processing workload of this run';
      } else {
        const r = await measureProcessing(ctx, allThroughput, { n: opts.soakCalibrateN, concurrency: opts.concurrency, timeoutMs });
        cell.maxRate = r.rate;
        cell.maxSource = `a processing run of ${opts.soakCalibrateN} jobs`;
      }
      const rate = Math.max(1, Math.round(cell.maxRate * opts.soakRateFraction));
      log(`  soak: ${opts.soakN} jobs offered at ${rate} jobs/s (${opts.soakRateFraction} × ${Math.round(cell.maxRate)}, ${cell.maxSource})`);
      cell.runs.push(await measureSoak(ctx, { n: opts.soakN, rate, concurrency: opts.concurrency, retentionSeconds: opts.soakRetentionSeconds, deadline }));
    });
  };

  const templates: Record<string, string> = {};
  const dropTemplates: (() => Promise<void>)[] = [];
  try {
    const needs = (w: string) => opts.only.includes(w as never);
    if (needs('backlog') && backlogProfiles.length > 0) {
      for (const [key, size] of [['small', opts.backlogSmall], ['large', opts.backlogLarge]] as const) {
        const t0 = performance.now();
        const tpl = await makeBacklogTemplate(ctx, size, `backlog_${key}`);
        templates[key] = tpl.name;
        dropTemplates.push(tpl.drop);
        log(`backlog template: ${size} jobs (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
      }
    }
    if (needs('pullers')) {
      const tpl = await makeBacklogTemplate(ctx, opts.pullerBacklog, 'pullers');
      templates.pullers = tpl.name;
      dropTemplates.push(tpl.drop);
    }

    for (let round = 0; round < opts.rounds; round++) {
      log(`round ${round + 1}/${opts.rounds}`);
      if (needs('pgbench')) {
        await attempt(results.pgbench, `pgbench reference`, undefined, async () => {
          const r = await measurePgbench(ctx, { clients: opts.pgbenchClients, seconds: opts.pgbenchSeconds });
          results.pgbench.tool = r.tool;
          results.pgbench.insert.push(r.insert);
          results.pgbench.update.push(r.update);
        });
      }
      if (needs('enqueue')) {
        for (const t of rotate(enqueueTargets, round)) {
          const cell = (results.enqueue[t.id] ??= { system: t.system, errors: [], single: [], bulk: [] });
          await attempt(cell, `enqueue ${t.id}`, t.pending(), async () => {
            const r = await measureEnqueue(ctx, t as EnqueueTarget, { singleN: opts.singleN, n: opts.n, chunk: opts.bulkChunk });
            cell.single.push(r.single);
            cell.bulk.push(r.bulk);
          });
        }
      }
      if (needs('processing')) {
        for (const p of rotate(profiles, round)) {
          const cell = (results.processing[p.id] ??= { system: p.system, kind: p.kind, settings: p.settings, errors: [], rate: [], seconds: [], rss: {}, cpuUsPerJob: {}, succeeded: [], statements: [] });
          await attempt(cell, `processing ${p.id}`, p.pending(), async () => {
            const r = await measureProcessing(ctx, p as WorkerProfile, { n: opts.n, concurrency: opts.concurrency, timeoutMs });
            cell.rate.push(r.rate);
            cell.seconds.push(r.seconds);
            cell.succeeded.push(r.succeeded);
            for (const [role, bytes] of Object.entries(r.rss)) (cell.rss[role] ??= []).push(bytes);
            for (const [role, us] of Object.entries(r.cpuUsPerJob)) ((cell.cpuUsPerJob ??= {})[role] ??= []).push(us);
            if (r.statements) cell.statements.push(r.statements);
            if (r.succeeded !== opts.n) throw new Error(`only ${r.succeeded} of ${opts.n} jobs succeeded`);
          });
        }
      }
      if (needs('latency')) {
        for (const p of rotate(profiles, round)) {
          const cell = (results.latency[p.id] ??= { system: p.system, kind: p.kind, errors: [], p50: [], p95: [], p99: [], max: [], ackP50: [], afterAckP50: [] });
          await attempt(cell, `latency ${p.id}`, p.pending(), async () => {
            const r = await measureLatency(ctx, p, { jobs: opts.latencyJobs, intervalMs: opts.latencyIntervalMs, concurrency: opts.concurrency });
            cell.p50.push(r.p50);
            cell.p95.push(r.p95);
            cell.p99.push(r.p99);
            cell.max.push(r.max);
            cell.ackP50.push(r.ackP50);
            cell.afterAckP50.push(r.afterAckP50);
          });
        }
      }
      if (needs('backlog')) {
        for (const p of rotate(backlogProfiles, round)) {
          const cell = (results.backlog[p.id] ??= { errors: [], small: [], large: [] });
          const timed = Math.min(opts.backlogSmall, opts.backlogLarge);
          await attempt(cell, `backlog ${p.id}`, p.pending(), async () => {
            const small = await measureBacklog(ctx, p, templates.small as string, { timed, concurrency: opts.concurrency, timeoutMs });
            const large = await measureBacklog(ctx, p, templates.large as string, { timed, concurrency: opts.concurrency, timeoutMs });
            cell.small.push(small.rate);
            cell.large.push(large.rate);
          });
        }
      }
      if (needs('pullers')) {
        for (const n of opts.pullers) {
          for (const mode of rotate<PullerMode>(['batch', 'direct'], round + n)) {
            const cell = (results.pullers[mode][String(n)] ??= { errors: [], runs: [] });
            await attempt(cell, `pullers ${mode} ×${n}`, mode === 'batch' ? serverPending() : undefined, async () => {
              cell.runs.push(await measurePullers(ctx, mode, n, templates.pullers as string, { batch: opts.pullerBatch, seconds: opts.pullerSeconds }));
            });
          }
        }
      }
      if (needs('limited')) {
        const runs = LIMITED_SYSTEMS.filter((sys) => want(sys.id)).flatMap((sys) => sys.limits(opts.limitedLimits).map((limit) => ({ sys, limit })));
        for (const { sys, limit } of rotate(runs, round)) {
          const id = `${sys.id}, limit ${limit}`;
          const cell = ((results.limited ??= {})[id] ??= { system: sys.system, limit, jobMs: opts.limitedJobMs, errors: [], rate: [], windowRate: [], maxConcurrent: [], refillGapP50: [] });
          await attempt(cell, `limited ${id}`, sys.pending(), async () => {
            const r = await sys.measure(ctx, { limit, seconds: opts.limitedSeconds, jobMs: opts.limitedJobMs, concurrency: opts.concurrency });
            cell.rate.push(r.rate);
            cell.windowRate.push(r.windowRate);
            cell.maxConcurrent.push(r.maxConcurrent);
            (cell.refillGapP50 ??= []).push(r.refillGapP50);
            if (r.maxConcurrent > limit) throw new Error(`${r.maxConcurrent} handlers ran at once on a queue limited to ${limit}`);
          });
        }
      }
      // The soak runs once (it takes minutes), after round 1's processing has measured the maximum.
      if (needs('soak') && round === 0 && want(allThroughput.id)) await soak();
    }
  } finally {
    for (const drop of dropTemplates) await drop().catch((err: unknown) => log(`dropping a template failed: ${errMessage(err)}`));
    if (!hooks.target) await target.stop();
  }
  results.meta.finishedAt = new Date().toISOString();
  results.meta.machine.loadavgEnd = os.loadavg();
  await mkdir(opts.outDir, { recursive: true });
  return results;
}
