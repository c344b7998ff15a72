import { bestPeer, fmt1, fmtInt, m } from './format.js';
import type { BenchResults, TargetCheck } from './results.js';
import { idealRate } from '../workloads/limited.js';

const ALL = 'pgdispatch all (throughput)';
const BOUNDED = 'pgdispatch all (bounded)';
const SPLIT = 'pgdispatch split (api + worker, HTTP)';
const GW = 'graphile-worker (throughput)';
const GWB = 'graphile-worker (bounded)';

type Op = '≥' | '≤';
const holds = (op: Op, v: number, goal: number) => (op === '≥' ? v >= goal : v <= goal);

/**
 * Checks the targets of issue 14 (and the earlier ones still standing) against the medians.
 * A figure that did not run is "not measured" (met: null), never met.
 */
export function checkTargets(r: BenchResults): TargetCheck[] {
  const out: TargetCheck[] = [];
  /** a / b against `goal`×; `unit` names what a and b are. */
  const ratio = (figure: string, op: Op, goal: number, a: number, b: number, unit: string, what = '') => {
    const v = a / b;
    const ok = Number.isFinite(v);
    const f = unit.startsWith('jobs/s') ? fmtInt : fmt1;
    out.push({ figure, goal: `${op} ${goal}×`, measured: ok ? `${v.toFixed(2)}× (${f(a)} vs ${f(b)} ${unit})` : `n/a${what ? ` (${what})` : ''}`, met: ok ? holds(op, v, goal) : null });
  };
  /** An absolute figure against a limit. */
  const value = (figure: string, op: Op, goal: number, v: number, unit: string, shown = `${fmt1(v)} ${unit}`) => {
    const ok = Number.isFinite(v);
    out.push({ figure, goal: `${op} ${fmt1(goal)} ${unit}`, measured: ok ? shown : 'n/a', met: ok ? holds(op, v, goal) : null });
  };
  const p = r.processing;
  const rate = (id: string) => m(p[id]?.rate);
  ratio('processing: all (throughput) vs graphile-worker (throughput)', '≥', 1.25, rate(ALL), rate(GW), 'jobs/s');
  ratio('processing: split over HTTP vs graphile-worker (throughput)', '≥', 1.0, rate(SPLIT), rate(GW), 'jobs/s');
  ratio('processing: all (bounded) vs graphile-worker (bounded)', '≥', 2.0, rate(BOUNDED), rate(GWB), 'jobs/s');
  // Server execution time per job over the measured window (pg_stat_statements; n/a without it).
  const execUs = (id: string) => m(p[id]?.statements.map((s) => (s.execMs * 1000) / (r.meta.options.n as number)));
  ratio('database execution time per job: all (throughput) vs graphile-worker (throughput)', '≤', 1.0, execUs(ALL), execUs(GW), 'µs/job', r.meta.postgres.pgss ? '' : 'no pg_stat_statements');

  const lat = r.latency;
  ratio('pickup p50 after ack: all (throughput) vs graphile-worker (throughput)', '≤', 1.0, m(lat[ALL]?.afterAckP50), m(lat[GW]?.afterAckP50), 'ms');
  value('pickup p50 after ack: split', '≤', 1.5, m(lat[SPLIT]?.afterAckP50), 'ms');
  const peer = bestPeer(lat, (c) => c.p50, false);
  for (const id of [ALL, BOUNDED, SPLIT]) {
    ratio(`pickup p50 total: ${id.replace('pgdispatch ', '')} vs best peer (${peer.id || 'n/a'})`, '≤', 1.0, m(lat[id]?.p50), peer.value, 'ms');
  }

  const e = r.enqueue;
  for (const [kind, goal] of [['single', 0.9], ['bulk', 0.8]] as const) {
    ratio(`enqueue ${kind}: HTTP api vs engine`, '≥', goal, m(e['pgdispatch (HTTP api)']?.[kind]), m(e['pgdispatch (engine)']?.[kind]), 'jobs/s');
  }
  for (const kind of ['single', 'bulk'] as const) {
    const best = bestPeer(e, (c) => c[kind]);
    for (const id of ['pgdispatch (engine)', 'pgdispatch (HTTP api)']) {
      ratio(`enqueue ${kind}: ${id.replace('pgdispatch ', '')} vs best peer (${best.id || 'n/a'})`, '≥', 1.3, m(e[id]?.[kind]), best.value, 'jobs/s');
    }
  }

  const split = p[SPLIT];
  for (const [role, limit] of [['worker', 100], ['api', 150]] as const) {
    value(`peak RSS, ${role} process (split, processing)`, '≤', limit, m(split?.rss[role]) / 2 ** 20, 'MB');
  }

  const limited = Object.entries(r.limited ?? {}).filter(([, c]) => c.system === 'pgdispatch');
  if (limited.length === 0) out.push({ figure: 'limited queue, limit L, 50 ms jobs', goal: '≥ 0.9 × L / 0.05 s', measured: 'n/a', met: null });
  for (const [, c] of limited) {
    const goal = 0.9 * idealRate(c.limit, c.jobMs);
    value(`limited queue, limit ${c.limit}, ${c.jobMs} ms jobs (0.9 × L / job length)`, '≥', goal, m(c.rate), 'jobs/s');
  }

  const run = r.soak?.runs[0];
  const note = run?.note ? ` — ${run.note}` : '';
  ratio('soak: throughput, last 10% vs first 10%', '≥', 0.9, run?.parts.at(-1)?.rate ?? Number.NaN, run?.parts[0]?.rate ?? Number.NaN, `jobs/s${note}`);
  const worstP99 = run && run.parts.length > 1 ? Math.max(...run.parts.slice(1).map((x) => x.pickupP99)) : Number.NaN;
  ratio('soak: pickup p99 (sampled), worst later 10% vs first 10% (stable)', '≤', 2.0, worstP99, run?.parts[0]?.pickupP99 ?? Number.NaN, 'ms');
  const mib = (b: number | undefined) => (b === undefined ? Number.NaN : b / 2 ** 20);
  ratio('soak: jobs table + indexes, end vs after the first 10%', '≤', 2.0, mib(run?.sizeEnd), mib(run?.sizeFirst), 'MB');

  const bl = r.backlog[ALL];
  ratio('backlog: 1M vs 10k waiting, all (throughput)', '≥', 0.9, m(bl?.large), m(bl?.small), 'jobs/s');
  const batchAt = (n: number) => m(r.pullers.batch[String(n)]?.runs.map((x) => x.jobsPerSec));
  if (r.pullers.batch['64'] || r.pullers.batch['16']) {
    ratio('puller scaling: batch jobs/s at 64 pullers vs at 16 (keeps rising)', '≥', 1.0, batchAt(64), batchAt(16), 'jobs/s');
  }
  return out;
}
