/** Re-renders a saved run: `npm --workspace bench run report -- bench/results/<ts>.json`. */
import { readFile } from 'node:fs/promises';
import { renderReport } from './lib/report.js';
import { checkTargets } from './lib/targets.js';
import type { BenchResults } from './lib/results.js';

const file = process.argv[2];
if (!file) throw new Error('usage: tsx src/report-cli.ts <results.json>');
const results = JSON.parse(await readFile(file, 'utf8')) as BenchResults;
results.targets = checkTargets(results);
process.stdout.write(`${renderReport(results)}\n`);
