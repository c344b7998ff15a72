// Prints the built dashboard's size, raw and gzipped (what the api sends), and fails the build
// when the bundle outgrows its budget (~150 kB gzipped, issue #13).
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { gzipSync } from 'node:zlib';

const BUDGET_GZIP_BYTES = 150 * 1024;
const dist = new URL('../dist/', import.meta.url).pathname;
const walk = (d) => readdirSync(d).flatMap((n) => (statSync(join(d, n)).isDirectory() ? walk(join(d, n)) : [join(d, n)]));
let raw = 0;
let gz = 0;
for (const f of walk(dist)) {
  const body = readFileSync(f);
  const z = gzipSync(body, { level: 9 }).length;
  raw += body.length;
  gz += z;
  console.log(`dashboard ${relative(dist, f).padEnd(36)} ${(body.length / 1024).toFixed(1).padStart(7)} kB  gzip ${(z / 1024).toFixed(1).padStart(6)} kB`);
}
console.log(`dashboard total ${(raw / 1024).toFixed(1)} kB, gzip ${(gz / 1024).toFixed(1)} kB (budget ${BUDGET_GZIP_BYTES / 1024} kB)`);
if (gz > BUDGET_GZIP_BYTES) {
  console.error('dashboard bundle is over its gzip budget');
  process.exit(1);
}
