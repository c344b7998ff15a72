import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { sleep, wallMs } from './stats.js';

/** Repository root (bench/src/lib → ../../..). */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

/** Messages a bench child sends over IPC. */
export type ChildMessage =
  | { type: 'ready' }
  | { type: 'pong'; id: number; t: number }
  | { type: 'marks'; marks: [number, number][] }
  | { type: 'count'; id: number; n: number }
  | { type: 'error'; message: string };

export interface Child {
  name: string;
  pid: number;
  proc: ChildProcess;
  /** Last lines of stdout+stderr, for error reports. */
  tail(): string;
  send(msg: unknown): void;
  /** Resolves on the first message of the type (rejects if the process exits first or on timeout). */
  waitFor<T extends ChildMessage['type']>(type: T, timeoutMs?: number): Promise<Extract<ChildMessage, { type: T }>>;
  /** Handler start times reported by the child: payload index → wall ms (the child's clock). */
  marks: Map<number, number>;
  /** Peak resident set (VmHWM) in bytes, read from /proc while the process lives; NaN elsewhere. */
  peakRss(): Promise<number>;
  /** CPU time (user + system) the process has used so far, in µs, from /proc (Linux); NaN elsewhere. */
  cpuUs(): Promise<number>;
  /** The child's clock minus ours in ms, from the lowest-RTT of `samples` IPC pings. */
  clockOffset(samples?: number): Promise<number>;
  /** Handlers that ended so far, as the child counts them (children that run the bench's tasks). */
  handled(): Promise<number>;
  exited: Promise<number | null>;
  /** SIGTERM, then SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
}

export interface SpawnOptions {
  name: string;
  /** Extra node flags (e.g. --cpu-prof). */
  nodeArgs?: string[];
  env?: Record<string, string | undefined>;
  /** Run a TypeScript entry through tsx's loader. */
  typescript?: boolean;
  onLine?: (line: string) => void;
}

/** Spawns `node <script> ...args` with an IPC channel; the bench's children all go through here. */
export function spawnNode(script: string, args: string[], opts: SpawnOptions): Child {
  // BENCH_NODE_ARGS adds node flags to every child (e.g. --trace-gc with BENCH_ECHO=1).
  const extra = (process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const nodeArgs = [...(opts.typescript ? ['--import', 'tsx'] : []), ...(opts.nodeArgs ?? []), ...extra];
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries({ ...process.env, ...opts.env })) if (v !== undefined) env[k] = v;
  // vitest/tsx set NODE_OPTIONS loaders of their own; a child decides its own loader.
  delete env.NODE_OPTIONS;
  const proc = spawn(process.execPath, [...nodeArgs, script, ...args], { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
  const lines: string[] = [];
  // BENCH_ECHO=1 copies every child's output to stderr (debugging a system's setup).
  const echo = process.env.BENCH_ECHO === '1';
  const onData = (buf: Buffer) => {
    for (const line of buf.toString().split('\n')) {
      if (!line) continue;
      lines.push(line);
      if (lines.length > 40) lines.shift();
      opts.onLine?.(line);
      if (echo) process.stderr.write(`[${opts.name}] ${line}\n`);
    }
  };
  proc.stdout?.on('data', onData);
  proc.stderr?.on('data', onData);
  const marks = new Map<number, number>();
  const listeners = new Set<(m: ChildMessage) => void>();
  proc.on('message', (m: ChildMessage) => {
    if (m.type === 'marks') for (const [i, t] of m.marks) marks.set(i, t);
    for (const l of listeners) l(m);
  });
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  let alive = true;
  void exited.then(() => (alive = false));
  const tail = () => lines.join('\n');
  let counts = 0;
  const child: Child = {
    name: opts.name,
    pid: proc.pid ?? -1,
    proc,
    tail,
    marks,
    exited,
    send: (msg) => {
      if (alive && proc.connected) proc.send(msg as never);
    },
    waitFor: (type, timeoutMs = 60_000) =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => finish(new Error(`${opts.name}: no ${type} within ${timeoutMs} ms\n${tail()}`)), timeoutMs);
        const l = (m: ChildMessage) => {
          if (m.type === type) finish(undefined, m);
          else if (m.type === 'error') finish(new Error(`${opts.name}: ${m.message}\n${tail()}`));
        };
        const onExit = (code: number | null) => finish(new Error(`${opts.name} exited (${code}) before ${type}\n${tail()}`));
        function finish(err?: Error, m?: ChildMessage) {
          clearTimeout(timer);
          listeners.delete(l);
          proc.off('exit', onExit);
          if (err) reject(err);
          else resolve(m as never);
        }
        listeners.add(l);
        proc.once('exit', onExit);
      }),
    peakRss: () => peakRss(proc.pid),
    cpuUs: () => cpuUs(proc.pid),
    clockOffset: async (samples = 25) => {
      let best = { rtt: Infinity, offset: 0 };
      for (let id = 0; id < samples; id++) {
        const sent = wallMs();
        const pong = child.waitFor('pong', 5_000);
        child.send({ type: 'ping', id });
        const { t } = await pong;
        const got = wallMs();
        if (got - sent < best.rtt) best = { rtt: got - sent, offset: t - (sent + got) / 2 };
      }
      return best.offset;
    },
    handled: async () => {
      const id = ++counts;
      const reply = child.waitFor('count', 5_000);
      child.send({ type: 'count', id });
      return (await reply).n;
    },
    stop: async (graceMs = 5_000) => {
      if (!alive) return;
      proc.kill('SIGTERM');
      const done = await Promise.race([exited.then(() => true), sleep(graceMs).then(() => false)]);
      if (!done) {
        proc.kill('SIGKILL');
        await exited;
      }
    },
  };
  return child;
}

/**
 * utime + stime of a live process in µs, from /proc/<pid>/stat (clock ticks of 10 ms at the usual
 * USER_HZ 100); NaN elsewhere. CPU time per job is what a loaded, shared machine distorts least.
 */
export async function cpuUs(pid: number | undefined): Promise<number> {
  if (pid === undefined) return Number.NaN;
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // Fields after the parenthesised command name (which may contain spaces): state is field 3.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    return Number.isFinite(ticks) ? ticks * 10_000 : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

/** VmHWM (peak RSS) of a live process in bytes, from /proc/<pid>/status (Linux); NaN elsewhere. */
export async function peakRss(pid: number | undefined): Promise<number> {
  if (pid === undefined) return Number.NaN;
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const m = /^VmHWM:\s+(\d+)\s+kB/m.exec(status);
    return m?.[1] ? Number(m[1]) * 1024 : Number.NaN;
  } catch {
    return Number.NaN; // not Linux, or the process is gone: reported as n/a
  }
}

/** Polls `url` until it answers 2xx (or throws after `timeoutMs`). */
export async function waitForHttp(url: string, child: Child, timeoutMs = 30_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  let exitCode: number | null | undefined;
  void child.exited.then((c) => (exitCode = c));
  for (;;) {
    if (exitCode !== undefined) throw new Error(`${child.name} exited (${exitCode}) while starting\n${child.tail()}`);
    try {
      const res = await fetch(url);
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > until) throw new Error(`${child.name}: ${url} not ready within ${timeoutMs} ms\n${child.tail()}`);
    await sleep(50);
  }
}
