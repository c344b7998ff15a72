/**
 * The chaos suite's own bookkeeping, independent of pgdispatch's: executions come from the file
 * the tasks append to (`id:attempt:start|end:pid:epochMs`), completions from a trigger on `jobs`
 * that logs every state change into `chaos_transitions`. Pure functions over those records.
 */

export interface Mark {
  id: number;
  attempt: number;
  what: 'start' | 'end';
  pid: number;
  at: number;
}

export interface Transition {
  jobId: number;
  newState: string;
  attempt: number;
  at: number;
}

export interface Kill {
  kind: 'worker' | 'api';
  pid: number;
  at: number;
  /** api kills: jobs that were running when it died (a snapshot taken just before). */
  running?: number[];
}

/** One execution of a job: from its start mark to its end mark, or to its process's death. */
export interface Execution {
  id: number;
  attempt: number;
  pid: number;
  start: number;
  end: number;
  finished: boolean;
}

export function parseMarks(text: string): Mark[] {
  const marks: Mark[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    const [id, attempt, what, pid, at] = line.split(':');
    marks.push({ id: Number(id), attempt: Number(attempt), what: what as Mark['what'], pid: Number(pid), at: Number(at) });
  }
  return marks;
}

/**
 * Pairs start and end marks into executions. An execution without an end ended when its process
 * was killed (or, if it never was, at `horizon`: still running, or aborted after a lost lease).
 */
export function executions(marks: Mark[], kills: Kill[], horizon: number): Execution[] {
  const open = new Map<string, Execution>();
  const out: Execution[] = [];
  for (const m of marks) {
    const key = `${m.id}:${m.attempt}:${m.pid}`;
    if (m.what === 'start') open.set(key, { id: m.id, attempt: m.attempt, pid: m.pid, start: m.at, end: horizon, finished: false });
    else {
      const e = open.get(key);
      if (e) {
        e.end = m.at;
        e.finished = true;
        open.delete(key);
        out.push(e);
      }
    }
  }
  for (const e of open.values()) {
    const death = kills.find((k) => k.pid === e.pid && k.at >= e.start);
    out.push({ ...e, end: death ? death.at : horizon });
  }
  return out;
}

/** Most executions overlapping at one instant, among `execs`. */
export function maxOverlap(execs: Execution[]): number {
  const points = execs.flatMap((e) => [
    { t: e.start, d: 1 },
    { t: e.end, d: -1 },
  ]);
  // At equal times an end comes before a start: touching intervals do not overlap.
  points.sort((a, b) => a.t - b.t || a.d - b.d);
  let cur = 0;
  let max = 0;
  for (const p of points) {
    cur += p.d;
    max = Math.max(max, cur);
  }
  return max;
}

export interface ChaosSummary {
  enqueued: number;
  completed: number;
  lost: number;
  lostIds: number[];
  completedTwice: number;
  executionsPerJob: Record<string, number>;
  maxExecutions: number;
  /** Jobs with two executions overlapping in time (excluding the stalled job, whose lease was lost on purpose). */
  ranTwiceAtOnce: number;
  limitedQueue: { limit: number; jobs: number; maxConcurrent: number };
  processesKilled: { workers: number; apis: number };
  postgresStops: number;
  /** Processes that died without being killed. */
  crashed: number;
  requestsFuzzed: number;
  /** 5xx other than 503. */
  fiveXX: number;
  /** 503 unavailable answers (documented, with Retry-After). */
  unavailable: number;
  /** Fuzz answers outside the contract other than 5xx: wrong error shape, or no answer at all. */
  fuzzProblems: number;
  /** Per kill: ms from the kill until the last job it held was finished by another attempt. */
  killToFinishedMs: { kind: string; jobs: number; ms: number }[];
  stall: { jobId: number; lateResultWritten: boolean; storedAttempt: number | null; lateResultRefused: boolean } | null;
  durationMs: number;
}

export function summarise(input: {
  enqueued: number[];
  marks: Mark[];
  transitions: Transition[];
  kills: Kill[];
  limitedIds: Set<number>;
  limit: number;
  stallId: number | null;
  stallStoredAttempt: number | null;
  pgStops: number;
  crashed: number;
  fuzz: { requests: number; fiveXX: number; unavailable: number; problems: number };
  startedAt: number;
  endedAt: number;
}): ChaosSummary {
  const succeeded = new Map<number, number>();
  for (const t of input.transitions) if (t.newState === 'succeeded') succeeded.set(t.jobId, (succeeded.get(t.jobId) ?? 0) + 1);
  const lostIds = input.enqueued.filter((id) => !succeeded.has(id));
  const execs = executions(input.marks, input.kills, input.endedAt);
  const byJob = new Map<number, Execution[]>();
  for (const e of execs) byJob.set(e.id, [...(byJob.get(e.id) ?? []), e]);
  const perJob: Record<string, number> = {};
  let maxExecutions = 0;
  let ranTwice = 0;
  for (const id of input.enqueued) {
    const list = byJob.get(id) ?? [];
    perJob[String(list.length)] = (perJob[String(list.length)] ?? 0) + 1;
    maxExecutions = Math.max(maxExecutions, list.length);
    if (id !== input.stallId && maxOverlap(list) > 1) ranTwice++;
  }
  const successAt = new Map<number, number>();
  for (const t of input.transitions) if (t.newState === 'succeeded') successAt.set(t.jobId, t.at);
  /** When `id` was next finished after `t`: the end of a later execution (or its completion). */
  const finishedAfter = (id: number, t: number) => {
    const ends = (byJob.get(id) ?? []).filter((e) => e.finished && e.start >= t).map((e) => e.end);
    const success = successAt.get(id);
    if (ends.length) return Math.min(...ends);
    return success !== undefined && success >= t ? success : input.endedAt;
  };
  const killToFinished = input.kills.map((k) => {
    // A worker's jobs: executions it started and never finished. An api's: what ran when it died.
    const held = k.kind === 'worker' ? execs.filter((e) => e.pid === k.pid && !e.finished && e.end === k.at).map((e) => e.id) : (k.running ?? []);
    const done = held.map((id) => (k.kind === 'worker' ? finishedAfter(id, k.at) : (successAt.get(id) ?? input.endedAt)));
    return { kind: k.kind, jobs: held.length, ms: held.length ? Math.max(...done) - k.at : 0 };
  });
  let stall: ChaosSummary['stall'] = null;
  if (input.stallId !== null) {
    const list = byJob.get(input.stallId) ?? [];
    const first = list.find((e) => e.attempt === 1);
    // Late: attempt 1 finished after the reaper had taken its lease (the trigger saw the job
    // leave `running` for `retry_waiting` before the task wrote its end mark).
    const reapedAt = input.transitions.find((t) => t.jobId === input.stallId && t.newState === 'retry_waiting' && t.attempt === 1)?.at;
    const lateResultWritten = Boolean(first?.finished && reapedAt !== undefined && reapedAt < first.end);
    stall = {
      jobId: input.stallId,
      lateResultWritten,
      storedAttempt: input.stallStoredAttempt,
      lateResultRefused: lateResultWritten && input.stallStoredAttempt !== null && input.stallStoredAttempt !== 1 && (succeeded.get(input.stallId) ?? 0) === 1,
    };
  }
  return {
    enqueued: input.enqueued.length,
    completed: input.enqueued.filter((id) => succeeded.has(id)).length,
    lost: lostIds.length,
    lostIds: lostIds.slice(0, 20),
    completedTwice: [...succeeded.values()].filter((n) => n > 1).length,
    executionsPerJob: perJob,
    maxExecutions,
    ranTwiceAtOnce: ranTwice,
    limitedQueue: { limit: input.limit, jobs: input.limitedIds.size, maxConcurrent: maxOverlap(execs.filter((e) => input.limitedIds.has(e.id))) },
    processesKilled: { workers: input.kills.filter((k) => k.kind === 'worker').length, apis: input.kills.filter((k) => k.kind === 'api').length },
    postgresStops: input.pgStops,
    crashed: input.crashed,
    requestsFuzzed: input.fuzz.requests,
    fiveXX: input.fuzz.fiveXX,
    unavailable: input.fuzz.unavailable,
    fuzzProblems: input.fuzz.problems,
    killToFinishedMs: killToFinished,
    stall,
    durationMs: input.endedAt - input.startedAt,
  };
}

/** The summary as the lines `npm run chaos` prints. */
export function formatSummary(s: ChaosSummary, leaseMs: number): string {
  const worst = (kind: string) => Math.max(0, ...s.killToFinishedMs.filter((k) => k.kind === kind).map((k) => k.ms));
  return [
    `enqueued                 ${s.enqueued}`,
    `completed                ${s.completed}`,
    `lost                     ${s.lost}${s.lost ? ` (${s.lostIds.join(',')})` : ''}`,
    `completed twice          ${s.completedTwice}`,
    `executions per job       ${Object.entries(s.executionsPerJob).map(([n, c]) => `${n}×: ${c}`).join(', ')} (max ${s.maxExecutions})`,
    `ran twice at once        ${s.ranTwiceAtOnce}`,
    `limited queue            limit ${s.limitedQueue.limit}, ${s.limitedQueue.jobs} jobs, max ${s.limitedQueue.maxConcurrent} at once across both apis`,
    `processes killed         ${s.processesKilled.workers} workers, ${s.processesKilled.apis} api (SIGKILL); PostgreSQL stopped ${s.postgresStops}×; crashed by themselves: ${s.crashed}`,
    `stalled worker           ${s.stall ? `job ${s.stall.jobId}: late result ${s.stall.lateResultWritten ? 'sent' : 'NOT sent'}, stored attempt ${s.stall.storedAttempt}, refused: ${s.stall.lateResultRefused}` : 'not run'}`,
    `requests fuzzed          ${s.requestsFuzzed}`,
    `5xx seen                 ${s.fiveXX} other than 503; 503 (Retry-After) ${s.unavailable}; other fuzz problems ${s.fuzzProblems}`,
    `kill → its jobs finished worker max ${worst('worker')} ms, api max ${worst('api')} ms (goal ≤ lease ${leaseMs} + 1000 ms); jobs held per kill: ${s.killToFinishedMs.map((k) => `${k.kind} ${k.jobs}`).join(', ')}`,
    `duration                 ${(s.durationMs / 1000).toFixed(1)} s`,
  ].join('\n');
}
