import type { BenchResults } from './results.js';
import { bestPeer, fmt1, fmtInt, fmtX, m, mb, range, status, table } from './format.js';
import { renderLimited, renderSoak } from './report-cost.js';
import { checkTargets } from './targets.js';

/** The full text report: one table per workload, then the targets. */
export function renderReport(r: BenchResults): string {
  const o = r.meta.options as { n: number; rounds: number; singleN: number; bulkChunk: number; concurrency: number; latencyJobs: number; latencyIntervalMs: number; backlogSmall: number; backlogLarge: number; pullerBatch: number; pullerSeconds: number; pullerBacklog: number };
  const parts: string[] = [];
  const pg = r.meta.postgres;
  parts.push(
    `pgdispatch bench — ${r.meta.startedAt}\n` +
      `machine: ${r.meta.machine.nproc} cores (${r.meta.machine.cpu}), ${r.meta.machine.memGiB} GiB, Node ${r.meta.machine.node}, ${r.meta.machine.os}; ` +
      `load average at start ${r.meta.machine.loadavgStart.map((x) => x.toFixed(2)).join(' ')}${r.meta.machine.loadavgEnd ? `, at end ${r.meta.machine.loadavgEnd.map((x) => x.toFixed(2)).join(' ')}` : ''}\n` +
      `PostgreSQL ${pg.version} (${pg.kind}); pg_stat_statements: ${pg.pgss ? 'yes' : `n/a (${pg.pgssReason ?? 'absent'})`}\n` +
      `versions: ${Object.entries(r.meta.versions).map(([k, v]) => `${k} ${v}`).join(', ')}\n` +
      `N=${o.n}, rounds=${o.rounds} (median [min–max]), ${o.concurrency} handlers, trivial handler`,
  );

  const pgbUpdate = m(r.pgbench.update);
  const pgbStatus = status(r.pgbench);
  if (r.pgbench.insert.length > 0 || r.pgbench.errors.length > 0) {
    parts.push(
      `Reference: ${r.pgbench.tool ?? 'pgbench'}, 16 clients, one statement per transaction\n` +
        table(['statement', 'tx/s'], [
          ['single-row INSERT', r.pgbench.insert.length ? `${fmtInt(m(r.pgbench.insert))} ${range(r.pgbench.insert, fmtInt)}` : (pgbStatus ?? '')],
          ['single-row UPDATE by pk', r.pgbench.update.length ? `${fmtInt(pgbUpdate)} ${range(r.pgbench.update, fmtInt)}` : (pgbStatus ?? '')],
        ]),
    );
  }

  if (Object.keys(r.enqueue).length > 0) {
    const single = bestPeer(r.enqueue, (c) => c.single);
    const bulk = bestPeer(r.enqueue, (c) => c.bulk);
    const rows = Object.entries(r.enqueue).map(([id, c]) => {
      const st = status(c);
      if (st && c.single.length === 0) return [id, st, '', '', ''];
      return [id, `${fmtInt(m(c.single))} ${range(c.single, fmtInt)}`, fmtX(m(c.single) / single.value), `${fmtInt(m(c.bulk))} ${range(c.bulk, fmtInt)}`, fmtX(m(c.bulk) / bulk.value)];
    });
    parts.push(`Enqueue (jobs/s): single = ${o.singleN} awaited enqueues, one commit each; bulk = ${o.n} in chunks of ${o.bulkChunk}\n` + table(['system', 'single', '× best peer', 'bulk', '× best peer'], rows));
  }

  if (Object.keys(r.processing).length > 0) {
    const best = bestPeer(r.processing, (c) => c.rate);
    const rows = Object.entries(r.processing).map(([id, c]) => {
      const st = status(c);
      if (st && c.rate.length === 0) return [id, st, '', '', '', ''];
      const rss = Object.entries(c.rss).map(([role, s]) => `${role} ${mb(m(s))}`).join(', ');
      const cpu = Object.entries(c.cpuUsPerJob ?? {}).filter(([, s]) => Number.isFinite(m(s))).map(([role, s]) => `${role} ${m(s).toFixed(0)}`).join(', ');
      return [id, `${fmtInt(m(c.rate))} ${range(c.rate, fmtInt)}`, fmtX(m(c.rate) / best.value), Number.isFinite(pgbUpdate) ? `${((m(c.rate) / pgbUpdate) * 100).toFixed(0)}%` : 'n/a', rss, cpu || 'n/a'];
    });
    parts.push(
      `Processing (jobs/s from worker go until the database shows all ${o.n} done; × best peer = ${best.id || 'n/a'})\n` +
        table(['profile', 'jobs/s', '× best peer', 'of pgbench UPDATE tx/s', 'peak RSS', 'CPU µs/job'], rows, ['l', 'r', 'r', 'r', 'l', 'l']),
    );
  }

  const withStats = Object.entries(r.processing).filter(([, c]) => c.statements.length > 0);
  if (withStats.length > 0) {
    const rows = withStats.map(([id, c]) => {
      const per = (f: (s: (typeof c.statements)[number]) => number) => m(c.statements.map(f));
      return [
        id,
        fmt1(per((s) => s.statements / o.n)),
        fmt1(per((s) => s.execMs / o.n) * 1000),
        fmtInt(per((s) => s.claim.calls)),
        fmt1(per((s) => s.claim.rows / s.claim.calls)),
        fmtInt(per((s) => s.complete.calls)),
        fmt1(per((s) => s.complete.rows / s.complete.calls)),
      ];
    });
    parts.push(
      'Processing diagnostics (pg_stat_statements, measured window only)\n' +
        table(['profile', 'stmts/job', 'db exec µs/job', 'claim stmts', 'jobs/claim', 'complete stmts', 'jobs/complete'], rows),
    );
  }

  if (Object.keys(r.latency).length > 0) {
    const rows = Object.entries(r.latency).map(([id, c]) => {
      const st = status(c);
      if (st && c.p50.length === 0) return [id, st, '', '', '', '', ''];
      return [id, fmt1(m(c.p50)), fmt1(m(c.p95)), fmt1(m(c.p99)), fmt1(m(c.max)), fmt1(m(c.ackP50)), fmt1(m(c.afterAckP50))];
    });
    parts.push(
      `Pickup latency (ms, enqueue start → handler start; idle worker, ${o.latencyJobs} jobs every ${o.latencyIntervalMs} ms; ack = the enqueue call itself (its commit), after ack = the dispatch path)\n` +
        table(['profile', 'p50', 'p95', 'p99', 'max', 'ack p50', 'after ack p50'], rows),
    );
  }

  if (Object.keys(r.backlog).length > 0) {
    const rows = Object.entries(r.backlog).map(([id, c]) => {
      const st = status(c);
      if (st && c.small.length === 0) return [id, st, '', ''];
      return [id, fmtInt(m(c.small)), fmtInt(m(c.large)), fmtX(m(c.large) / m(c.small))];
    });
    const timed = Math.min(o.backlogSmall, o.backlogLarge);
    parts.push(
      `Backlog scaling (jobs/s over the first ${fmtInt(timed)} completions, finished_at clock)\n` +
        table(['profile', `${fmtInt(o.backlogSmall)} waiting`, `${fmtInt(o.backlogLarge)} waiting`, 'ratio'], rows),
    );
  }

  const counts = [...new Set([...Object.keys(r.pullers.batch), ...Object.keys(r.pullers.direct)])].sort((a, b) => Number(a) - Number(b));
  if (counts.length > 0) {
    const cols = (mode: 'batch' | 'direct', n: string): string[] => {
      const c = r.pullers[mode][n];
      const st = status(c);
      if (!c || c.runs.length === 0) return [st ?? 'n/a', '', ''];
      const runs = c.runs;
      const pick = (f: (x: (typeof runs)[number]) => number) => m(runs.map(f));
      const conns = mode === 'direct' && pick((x) => x.connections) < Number(n) ? ` (${pick((x) => x.connections)} conns)` : '';
      return [`${fmtInt(pick((x) => x.jobsPerSec))}${conns}`, fmtInt(pick((x) => x.claimStatementsPerSec)), fmt1(pick((x) => x.rowsScannedPerJob))];
    };
    const rows = counts.map((n) => {
      const b = r.pullers.batch[n];
      const d = r.pullers.direct[n];
      const ratio = m(b?.runs.map((x) => x.jobsPerSec)) / m(d?.runs.map((x) => x.jobsPerSec));
      return [n, ...cols('batch', n), ...cols('direct', n), fmtX(ratio)];
    });
    parts.push(
      `Puller scaling (claims only, ${o.pullerBatch} jobs per pull, ${o.pullerSeconds} s per point, ${fmtInt(o.pullerBacklog)} waiting; stmts/s from pg_stat_statements; rows/job = rows and index entries of jobs read by scans, primary key excluded, per claimed job)\n` +
        table(['pullers', 'batch jobs/s', 'batch stmts/s', 'batch rows/job', 'direct jobs/s', 'direct stmts/s', 'direct rows/job', 'batch/direct'], rows),
    );
  }

  for (const section of [renderLimited(r, r.meta.options as { limitedSeconds?: number }), renderSoak(r)]) if (section) parts.push(section);

  const targets = r.targets ?? checkTargets(r);
  parts.push(
    'Targets\n' +
      table(['figure', 'goal', 'measured', 'status'], targets.map((t) => [t.figure, t.goal, t.measured, t.met === null ? 'not measured' : t.met ? 'met' : 'NOT MET']), ['l', 'l', 'l', 'l']),
  );
  return parts.join('\n\n');
}
