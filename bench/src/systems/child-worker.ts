import { spawnNode } from '../lib/proc.js';
import type { BenchContext, RunningWorker } from './types.js';

/**
 * Starts a benchmark worker script (TypeScript, run through tsx) as one child process, waits for
 * its `ready` mark and wraps it as a RunningWorker whose `go` message starts the handlers.
 */
export async function startChildWorker(ctx: BenchContext, script: string, name: string, env: Record<string, string>): Promise<RunningWorker> {
  const child = spawnNode(script, [], { name, typescript: true, nodeArgs: ctx.nodeArgs, env });
  await child.waitFor('ready');
  return {
    processes: [{ role: 'worker', child }],
    executor: child,
    go: async () => child.send({ type: 'go' }),
    stop: () => child.stop(),
  };
}
