import { fmt1, fmtInt, fmtX, m, range, status, table } from './format.js';
import type { BenchResults } from './results.js';
import { idealRate } from '../workloads/limited.js';
import { soakVerdict } from '../workloads/soak-stats.js';

/** Report sections for the workloads of "cost as work grows": the limited queue and the soak. */

/** MB with a decimal under 10 MB (a smoke-size soak's table is a few MB). */
const mb = (bytes: number) => (Number.isFinite(bytes) ? `${fmt1(bytes / 2 ** 20)} MB` : 'n/a');

export function renderLimited(r: BenchResults, o: { limitedSeconds?: number }): string | undefined {
  const cells = Object.entries(r.limited ?? {});
  if (cells.length === 0) return undefined;
  const rows = cells.map(([id, c]) => {
    const st = status(c);
    if (st && c.rate.length === 0) return [id, String(c.limit), st, '', '', '', ''];
    const ideal = idealRate(c.limit, c.jobMs);
    return [id, String(c.limit), `${fmt1(m(c.rate))} ${range(c.rate, fmt1)}`, `${((m(c.rate) / ideal) * 100).toFixed(0)}% of ${fmt1(ideal)}`, fmt1(m(c.windowRate)), fmt1(m(c.refillGapP50)), fmtInt(Math.max(...c.maxConcurrent))];
  });
  const jobMs = cells[0]?.[1].jobMs ?? 50;
  return (
    `Limited queue (concurrency limit L, handlers sleep ${jobMs} ms, ${o.limitedSeconds ?? '?'} s window; jobs/s = handler starts after the first L over first → last start; ideal = L / ${jobMs / 1000} s; ` +
    'refill gap = a handler\'s end → the next start in its slot; graphile-worker: jobs sharing a queueName run one at a time, i.e. L = 1)\n' +
    table(['profile', 'L', 'jobs/s', 'of ideal', 'window jobs/s (db)', 'refill gap p50 ms', 'max running'], rows)
  );
}

export function renderSoak(r: BenchResults): string | undefined {
  const c = r.soak;
  if (!c) return undefined;
  const run = c.runs[0];
  const head = `Soak: ${c.profile}, retention ${c.retentionSeconds} s (RETENTION_SECONDS, EVENT_RETENTION_SECONDS; jobs purged every 60 s, 5 s while busy; events by partition)`;
  if (!run) return `${head}\n${status(c) ?? 'no run'}`;
  const rows = run.parts.map((p) => [
    `${fmtInt(p.from)}–${fmtInt(p.to)}`,
    fmtInt(p.rate),
    fmt1(p.pickupP50),
    fmt1(p.pickupP99),
    fmt1(p.afterAckP50),
    fmtInt(p.sampled),
    fmtInt(p.backlogMax),
    mb(p.jobsBytes),
  ]);
  const first = run.parts[0];
  const last = run.parts.at(-1);
  const mid = run.parts[Math.floor(run.parts.length / 2) - 1];
  const v = soakVerdict(run.parts, run.sizeFirst, run.sizeEnd); // recomputed: saved runs re-render with today's rules
  return [
    `${head}\n${fmtInt(run.offered)} jobs offered at ${fmtInt(run.offeredRate)} jobs/s = ${c.fraction} × ${fmtInt(c.maxRate)} (${c.maxSource}); ` +
      `the enqueuer achieved ${fmtInt(run.enqueueRate)} jobs/s in bulk chunks on a timer; ${fmtInt(run.completed)} finished in ${fmt1(run.seconds)} s${run.note ? `; STOPPED EARLY: ${run.note}` : ''}`,
    table(['completions', 'jobs/s', 'pickup p50 ms', 'pickup p99 ms', 'after ack p50 ms', 'sampled', 'backlog max', 'jobs size'], rows),
    `last 10% vs first 10%: throughput ${fmtX(v.throughput)} (${fmtInt(first?.rate ?? Number.NaN)} → ${fmtInt(last?.rate ?? Number.NaN)} jobs/s); ` +
      `pickup p99, worst later 10% vs first: ${fmtX(v.pickupP99)} (first ${fmt1(first?.pickupP99 ?? Number.NaN)} ms)\n` +
      `jobs table + indexes (pg_total_relation_size): ${mb(run.sizeFirst)} (${fmtInt(run.rowsFirst)} rows) after the first 10%, ` +
      `${mb(run.sizeEnd)} (${fmtInt(run.rowsEnd)} rows) at the end: ${fmtX(v.size)}; database ${mb(run.dbSizeEnd)} at the end` +
      (run.eventsSizeEnd !== undefined ? `, job_events ${mb(run.eventsSizeEnd)}` : '') +
      // The goal's snapshot comes before retention has removed anything; the second half shows whether the size keeps growing.
      (mid?.jobsBytes !== undefined && last?.jobsBytes !== undefined ? `\njobs table + indexes in the second half: ${mb(mid.jobsBytes)} after 50% → ${mb(last.jobsBytes)} after 100%: ${fmtX(last.jobsBytes / mid.jobsBytes)}` : '') +
      // Every finished job still in the table: the run ended before retention + a purge tick.
      (run.rowsEnd >= run.completed ? `\nnothing was purged: the run (${fmt1(run.seconds)} s) ended before retention (${c.retentionSeconds} s) plus a purge tick (60 s) had passed, so the size ratio is the table's growth, not retention at work` : ''),
  ].join('\n');
}
