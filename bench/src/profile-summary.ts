/**
 * Summarises V8 `.cpuprofile` files (the bench's PROFILE=1 output): self time by function and by
 * package/file, and the share of garbage collection, idle and program time.
 * `npx tsx bench/src/profile-summary.ts <file.cpuprofile>... [--top=40]`
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: Node[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

const args = process.argv.slice(2);
const top = Number(args.find((a) => a.startsWith('--top='))?.slice(6) ?? 40);
for (const file of args.filter((a) => !a.startsWith('--'))) {
  const p = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  p.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (p.timeDeltas[i] ?? 0)));
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  const fn = new Map<string, number>();
  const where = new Map<string, number>();
  let idle = 0;
  for (const [id, us] of self) {
    const n = byId.get(id);
    if (!n) continue;
    const { functionName, url, lineNumber } = n.callFrame;
    if (functionName === '(idle)') idle += us;
    const short = shorten(url);
    const key = `${functionName || '(anonymous)'} ${short}:${lineNumber + 1}`;
    fn.set(key, (fn.get(key) ?? 0) + us);
    where.set(short || functionName, (where.get(short || functionName) ?? 0) + us);
  }
  const busy = total - idle;
  const pct = (us: number) => `${((us / busy) * 100).toFixed(1).padStart(5)} %`;
  process.stdout.write(`\n${path.basename(file)}: ${(total / 1e6).toFixed(2)} s sampled, busy ${(busy / 1e6).toFixed(2)} s (idle excluded from the shares)\n`);
  process.stdout.write('-- self time by function\n');
  for (const [k, us] of [...fn].filter(([k]) => !k.startsWith('(idle)')).sort((a, b) => b[1] - a[1]).slice(0, top)) process.stdout.write(`${pct(us)}  ${(us / 1000).toFixed(0).padStart(6)} ms  ${k}\n`);
  process.stdout.write('-- self time by file/package\n');
  for (const [k, us] of [...where].filter(([k]) => k !== '(idle)').sort((a, b) => b[1] - a[1]).slice(0, Math.max(20, top))) process.stdout.write(`${pct(us)}  ${(us / 1000).toFixed(0).padStart(6)} ms  ${k}\n`);
}

/** node_modules/<pkg>/… → <pkg>/…, repository paths relative, node: internals as they are. */
function shorten(url: string): string {
  if (!url) return '';
  const u = url.replace(/^file:\/\//, '');
  const nm = u.lastIndexOf('node_modules/');
  if (nm >= 0) return u.slice(nm + 13);
  const pk = u.indexOf('/packages/');
  if (pk >= 0) return u.slice(pk + 1);
  const ap = u.indexOf('/apps/');
  if (ap >= 0) return u.slice(ap + 1);
  return u;
}
