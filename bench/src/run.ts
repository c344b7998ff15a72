/**
 * `npm run bench`: pgdispatch against pg-boss and graphile-worker on the same machine and the same
 * PostgreSQL, interleaved rounds, median of ROUNDS. Prints the table, writes bench/results/<ts>.json.
 * Options: see lib/options.ts (N, ROUNDS, SMOKE=1, ONLY, SYSTEMS, BENCH_DATABASE_URL, PROFILE=1…).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseOptions } from './lib/options.js';
import { renderReport } from './lib/report.js';
import { checkTargets } from './lib/targets.js';
import { runBench } from './lib/runner.js';

const opts = parseOptions(process.env, process.argv.slice(2));
const profile = process.env.PROFILE === '1';
const stamp = new Date().toISOString().replace(/[:.]/g, '-');
const profileDir = profile ? path.join(opts.outDir, `profiles-${stamp}`) : undefined;
if (profileDir) await mkdir(profileDir, { recursive: true });
const command = `${Object.entries(process.env)
  .filter(([k]) => /^(N|ROUNDS|SMOKE|ONLY|SYSTEMS|BENCH_DATABASE_URL|SINGLE_N|PULLERS|PULLER_[A-Z_]+|BACKLOG_[A-Z_]+|LATENCY_[A-Z_]+|LIMITED_[A-Z_]+|SOAK_[A-Z_]+|PROFILE)$/.test(k))
  .map(([k, v]) => `${k}=${v}`)
  .join(' ')} npm run bench ${process.argv.slice(2).join(' ')}`.trim();
const results = await runBench(opts, {
  command,
  ...(profileDir ? { profileDir, nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] } : {}),
});
results.targets = checkTargets(results);
const file = path.join(opts.outDir, `${stamp}.json`);
await mkdir(opts.outDir, { recursive: true });
await writeFile(file, `${JSON.stringify(results, null, 2)}\n`);
process.stdout.write(`\n${renderReport(results)}\n\nresults: ${path.relative(process.cwd(), file)}\n`);
if (profileDir) process.stdout.write(`cpu profiles: ${path.relative(process.cwd(), profileDir)}\n`);
