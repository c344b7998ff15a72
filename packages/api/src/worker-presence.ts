/** Who asked for work: the in-process executor (role all) or a worker over the internal API. */
export interface ExecutorIdentity {
  /** `in-process`: the executor inside this process (role all); `http`: a worker over the internal API. */
  tier: 'in-process' | 'http';
  /** The worker credential's subject (JWT `sub`, `worker-key` for a static key). */
  subject: string;
}

/** One executor (or several sharing a credential, queue set and task set) as seen by this process's dequeues. */
export interface PresenceEntry extends ExecutorIdentity {
  queues: '*' | string[];
  /** The tasks it declared (`*`: any, what executors that predate task routing send). */
  tasks: '*' | string[];
  /** Epoch ms of the last dequeue's start or end. */
  lastSeenAt: number;
  /** A dequeue long-poll is open right now. */
  waiting: boolean;
}

/** Entries kept before old ones are dropped: one per credential × queue set × task set, so few in practice. */
const MAX_ENTRIES = 1_000;

/**
 * Which executors asked this api process for work lately: the `queuesWithoutWorkers` and
 * `tasksWithoutWorkers` warnings of `/readyz` (and `pgdispatch_tasks_without_workers`), `GET /v1/workers` and the dashboard. The view is per process: with several api pods
 * a queue counts as attended when any executor long-polls this pod for it.
 */
export class WorkerPresence {
  /** (tier, credential, queue set, task set) → what was seen last. */
  readonly #seen = new Map<string, PresenceEntry>();

  /** @param windowMs how long a dequeue counts as an executor listening on its queues (default 60000). */
  constructor(readonly windowMs = 60_000) {}

  /** Records a dequeue by `who` on `queues`, declaring `tasks`, while `request` is open; resolves with its result. */
  async track<T>(who: ExecutorIdentity, queues: '*' | string[], request: () => Promise<T>, tasks: '*' | string[] = '*'): Promise<T> {
    const sorted = queues === '*' ? '*' : [...queues].sort();
    const declared = tasks === '*' ? '*' : [...tasks].sort();
    const entry: PresenceEntry = { ...who, queues: sorted, tasks: declared, lastSeenAt: Date.now(), waiting: true };
    this.#seen.set(JSON.stringify([who.tier, who.subject, sorted, declared]), entry);
    if (this.#seen.size > MAX_ENTRIES) this.#forgetOld();
    try {
      return await request();
    } finally {
      entry.lastSeenAt = Date.now();
      entry.waiting = false;
    }
  }

  /** Queues among `queues` on which no executor asked for work within the window. */
  unattendedQueues(queues: string[], now = Date.now()): string[] {
    const live = this.workers(now);
    if (live.some((w) => w.queues === '*')) return [];
    const covered = new Set(live.flatMap((w) => w.queues));
    return queues.filter((q) => !covered.has(q));
  }

  /** Tasks among `tasks` that no executor declared within the window (a `*` declaration covers all). */
  unattendedTasks(tasks: string[], now = Date.now()): string[] {
    const live = this.workers(now);
    if (live.some((w) => w.tasks === '*')) return [];
    const covered = new Set(live.flatMap((w) => w.tasks));
    return tasks.filter((t) => !covered.has(t));
  }

  /** Executors that asked for work within the window (or are waiting now), newest first. */
  workers(now = Date.now()): PresenceEntry[] {
    const horizon = now - this.windowMs;
    return [...this.#seen.values()].filter((p) => p.waiting || p.lastSeenAt >= horizon).map((p) => ({ ...p })).sort((a, b) => b.lastSeenAt - a.lastSeenAt);
  }

  #forgetOld(): void {
    const horizon = Date.now() - this.windowMs;
    for (const [k, p] of this.#seen) if (!p.waiting && p.lastSeenAt < horizon) this.#seen.delete(k);
  }
}
