import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const CLI = path.join(REPO, 'apps/server/dist/cli.js');
export const TASKS = path.join(REPO, 'test/fixtures/tasks.mjs');

export interface ServerProcess {
  proc: ChildProcess;
  url: string;
  pid: number;
  output(): string;
  /** Sends `signal` and waits for the process to exit; resolves with its exit code. */
  kill(signal?: NodeJS.Signals): Promise<number | null>;
  exited: Promise<number | null>;
}

/**
 * Spawns `pgdispatch serve` (the built CLI) as a real child process with exactly `env` plus PATH
 * (so a worker never inherits DATABASE_URL), and waits for its "pgdispatch serving" log line.
 */
export async function spawnServer(env: Record<string, string>, opts: { timeoutMs?: number } = {}): Promise<ServerProcess> {
  const proc = spawn(process.execPath, [CLI, 'serve'], {
    cwd: REPO,
    env: { PATH: process.env.PATH ?? '', HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start in time:\n${out}`)), opts.timeoutMs ?? 30_000);
    const onData = (buf: Buffer) => {
      out += buf.toString();
      for (const line of out.split('\n')) {
        if (!line.includes('pgdispatch serving')) continue;
        try {
          const parsed = JSON.parse(line) as { url: string };
          clearTimeout(timer);
          resolve(parsed.url);
          return;
        } catch {
          // a partial line; wait for the rest
        }
      }
    };
    proc.stdout?.on('data', onData);
    proc.stderr?.on('data', (b: Buffer) => (out += b.toString()));
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code} before serving:\n${out}`));
    });
  });
  return {
    proc,
    url,
    pid: proc.pid ?? -1,
    output: () => out,
    kill: async (signal = 'SIGTERM') => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      return exited;
    },
    exited,
  };
}

/** Polls `fn` until it returns a truthy value or `timeoutMs` passes. */
export async function waitFor<T>(fn: () => Promise<T | undefined | false> | T | undefined | false, opts: { timeoutMs?: number; intervalMs?: number; what?: string } = {}): Promise<T> {
  const deadline = Date.now() + (opts.timeoutMs ?? 30_000);
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${opts.what ?? 'condition'}`);
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 100));
  }
}
