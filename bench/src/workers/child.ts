/**
 * The child side of the bench's IPC protocol, shared by every worker process the bench spawns:
 * answers clock pings, reports handler start times of marked jobs, and waits for `go`.
 */
export interface BenchPayload {
  /** Index of the job in its run. */
  i: number;
  /** Report the handler start time (pickup latency runs only). */
  m?: 1;
  /** Sleep this many ms before returning (limited-queue runs only; absent = return at once). */
  s?: number;
}

export interface ChildChannel {
  ready(): void;
  /** Resolves when the bench says go (the measured window starts). */
  go: Promise<void>;
  /** Resolves when the bench asks the child to stop. */
  stopping: Promise<void>;
  /** Call first thing in a handler. */
  mark(payload: unknown): void;
  error(err: unknown): void;
}

const now = () => performance.timeOrigin + performance.now();

export function childChannel(): ChildChannel {
  let go!: () => void;
  let stop!: () => void;
  const goP = new Promise<void>((r) => (go = r));
  const stopP = new Promise<void>((r) => (stop = r));
  const send = (m: unknown) => {
    if (process.connected) process.send?.(m);
  };
  process.on('message', (m: { type: string; id?: number }) => {
    if (m.type === 'ping') send({ type: 'pong', id: m.id, t: now() });
    else if (m.type === 'go') go();
    else if (m.type === 'stop') stop();
  });
  process.once('SIGTERM', () => stop());
  return {
    ready: () => send({ type: 'ready' }),
    go: goP,
    stopping: stopP,
    mark: (payload) => {
      const p = payload as BenchPayload | null;
      if (p && p.m === 1) send({ type: 'marks', marks: [[p.i, now()]] });
    },
    error: (err) => send({ type: 'error', message: err instanceof Error ? (err.stack ?? err.message) : String(err) }),
  };
}

/** A counting semaphore: at most `size` callers inside `run` at once. */
export class Semaphore {
  private free: number;
  private readonly waiting: (() => void)[] = [];
  constructor(size: number) {
    this.free = size;
  }
  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.free > 0) this.free--;
    else await new Promise<void>((r) => this.waiting.push(r));
    try {
      return await fn();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.free++;
    }
  }
}
