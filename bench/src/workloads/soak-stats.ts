import { percentile } from '../lib/stats.js';

/**
 * The soak's pure parts: the offered-rate schedule and the per-part figures computed from the
 * progress samples and the sampled pickups. No I/O, so they are unit-tested (soak-stats.test.ts).
 */

/** Jobs the schedule has offered by `elapsedMs` at `rate` jobs/s, capped at `n`. */
export function jobsDue(elapsedMs: number, rate: number, n: number): number {
  if (elapsedMs <= 0 || rate <= 0) return 0;
  return Math.min(n, Math.floor((elapsedMs * rate) / 1000));
}

/**
 * The enqueuer's timer period: 50 ms (a chunk of rate/20 jobs, 400 at 8,000 jobs/s: one bulk
 * statement per tick, steady, never the whole run at once), shorter for short runs so even a
 * smoke-size soak is spread over ≥ 20 ticks.
 */
export function tickMs(n: number, rate: number): number {
  return Math.max(2, Math.min(50, ((n / rate) * 1000) / 20));
}

/** How often progress is sampled: ~200 samples over the expected run, 20–250 ms apart. */
export function sampleMs(n: number, rate: number): number {
  return Math.max(20, Math.min(250, ((n / rate) * 1000) / 200));
}

/** Every k-th job is marked for pickup latency: about 2,000 sampled jobs per run, 200 per part. */
export function sampleEvery(n: number): number {
  return Math.max(1, Math.round(n / 2000));
}

export interface ProgressSample {
  /** ms since the window opened. */
  t: number;
  /** Jobs finished so far (offered and acknowledged minus still waiting or running). */
  completed: number;
  /** Jobs waiting or running. */
  backlog: number;
  /** pg_total_relation_size('jobs') when measured at this sample. */
  jobsBytes?: number;
}

/** First time `completed` reached `target`, linearly interpolated between samples (undefined: never). */
export function timeToReach(samples: readonly ProgressSample[], target: number): number | undefined {
  let prev: ProgressSample = { t: 0, completed: 0, backlog: 0 };
  for (const s of samples) {
    if (s.completed >= target) {
      if (s.completed === prev.completed) return s.t;
      return prev.t + ((target - prev.completed) / (s.completed - prev.completed)) * (s.t - prev.t);
    }
    prev = s;
  }
  return undefined;
}

export interface SoakPart {
  /** Completions this part covers: (from, to]. */
  from: number;
  to: number;
  /** Completions per second within the part. */
  rate: number;
  /** Pickup (bulk call start → handler start) of the sampled jobs offered in this part, ms. */
  pickupP50: number;
  pickupP99: number;
  /** The part of pickup after the bulk call returned (its commit): the dispatch path, p50, ms. */
  afterAckP50: number;
  sampled: number;
  /** Largest backlog (waiting + running) seen during the part. */
  backlogMax: number;
  /** Last `jobs` size measured by the end of the part, bytes. */
  jobsBytes: number;
}

/**
 * Splits a run of `total` completions into `parts` equal parts by completion count. A part's rate
 * is its jobs over the time between the interpolated moments its first and last completion count
 * was reached (part 0 starts at the window's start). Pickups are assigned by job index.
 */
export function soakParts(samples: readonly ProgressSample[], pickups: readonly { i: number; ms: number; afterAckMs?: number }[], total: number, parts = 10): SoakPart[] {
  const out: SoakPart[] = [];
  const size = total / parts;
  let t0 = 0;
  for (let k = 0; k < parts; k++) {
    const from = Math.round(k * size);
    const to = Math.round((k + 1) * size);
    const t1 = timeToReach(samples, to);
    const within = samples.filter((s) => s.t >= t0 && (t1 === undefined || s.t <= t1));
    const sized = samples.filter((s) => s.jobsBytes !== undefined && (t1 === undefined || s.t <= t1));
    const mine = pickups.filter((p) => p.i >= from && p.i < to);
    const lat = mine.map((p) => p.ms);
    out.push({
      from,
      to,
      rate: t1 !== undefined && t1 > t0 ? (to - from) / ((t1 - t0) / 1000) : Number.NaN,
      pickupP50: percentile(lat, 50),
      pickupP99: percentile(lat, 99),
      afterAckP50: percentile(mine.map((p) => p.afterAckMs ?? Number.NaN), 50),
      sampled: lat.length,
      backlogMax: within.reduce((a, s) => Math.max(a, s.backlog), 0),
      jobsBytes: sized.at(-1)?.jobsBytes ?? Number.NaN,
    });
    if (t1 === undefined) break;
    t0 = t1;
  }
  return out;
}

/** The soak's three goals from its parts and size snapshots; `ratio` NaN when not measurable. */
export function soakVerdict(parts: readonly SoakPart[], sizeFirst: number, sizeEnd: number) {
  const first = parts[0];
  const last = parts.length >= 2 ? parts.at(-1) : undefined;
  return {
    /** Throughput of the last part over the first (goal ≥ 0.9). */
    throughput: last && first ? last.rate / first.rate : Number.NaN,
    /** Pickup p99 of the worst later part over the first (goal ≤ 2: stable over the whole run). */
    pickupP99: last && first ? Math.max(...parts.slice(1).map((p) => p.pickupP99)) / first.pickupP99 : Number.NaN,
    /** `jobs` size at the end over its size after the first 10% (goal ≤ 2). */
    size: sizeEnd / sizeFirst,
  };
}
