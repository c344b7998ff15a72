#!/usr/bin/env node
import { Command, InvalidArgumentError } from 'commander';
import { ConfigError } from '@pgdispatch/core/config';
import { DispatchError } from '@pgdispatch/core/errors';
import { PgDispatchClient } from '@pgdispatch/client/client';
import { mintWorkerToken } from '@pgdispatch/api/tokens';
import { createJsonLogger } from '@pgdispatch/core/log';
import { int, json } from './cli-args.js';
import { scheduleCommands } from './cli-schedules.js';
import { cliDefaults, loadConfig, loadTokenSecret } from './config.js';
import { openDatabase } from './database.js';
import { startServer } from './serve.js';
import { serverVersion } from './version.js';
import { watchJob } from './watch.js';

/** `30d`, `12h`, `15m`, `90s` or plain seconds. */
const duration = (v: string) => {
  const m = /^(\d+)([smhd]?)$/.exec(v.trim());
  if (!m) throw new InvalidArgumentError('use e.g. 90s, 15m, 12h, 30d');
  return Number(m[1]) * ({ '': 1, s: 1, m: 60, h: 3600, d: 86400 } as Record<string, number>)[m[2] ?? '']!;
};
const print = (v: unknown): void => {
  process.stdout.write(`${JSON.stringify(v, null, 2)}\n`);
};

function client(cmd: Command): PgDispatchClient {
  const o = cmd.optsWithGlobals<{ url: string; apiKey?: string }>();
  return new PgDispatchClient({ baseUrl: o.url, ...(o.apiKey ? { apiKey: o.apiKey } : {}) });
}

async function serveCommand(): Promise<void> {
  const config = loadConfig();
  const server = await startServer(config, { demoQueue: config.DISPATCH_ROLE === 'all' });
  if (server.plan.servesApi) {
    // With API_KEYS set the request needs a key; the line names the variable, never a secret.
    const auth = config.API_KEYS.length > 0 ? ` -H "authorization: Bearer $PGDISPATCH_API_KEY"` : '';
    process.stdout.write(`pgdispatch ${serverVersion()} (${server.plan.role}) listening on ${server.url}\n` +
      `  try: curl -X POST ${server.url}/v1/queues/demo/jobs -H 'content-type: application/json'${auth} -d '{"task":"noop","payload":{}}'\n` +
      (auth ? `       (PGDISPATCH_API_KEY=<one of the API_KEYS secrets with scope enqueue>)\n` : ''));
  }
  let signals = 0;
  const onSignal = (sig: string) => {
    if (++signals > 1) process.exit(1); // a second signal means "now"
    process.stdout.write(`${sig}: shutting down gracefully\n`);
    server.stop().then(() => process.exit(0), () => process.exit(1));
  };
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  process.on('SIGINT', () => onSignal('SIGINT'));
}

function buildProgram(): Command {
  const defaults = cliDefaults();
  const program = new Command('pgdispatch')
    .description('Durable job queue and dispatcher on PostgreSQL')
    .version(serverVersion())
    .option('--url <url>', 'API base URL for client commands (PGDISPATCH_URL)', defaults.url)
    .option('--api-key <key>', 'API key for client commands (PGDISPATCH_API_KEY)', defaults.apiKey);

  program.command('serve', { isDefault: true }).description('run the role in DISPATCH_ROLE (all, api, worker)').action(serveCommand);

  program.command('migrate').description('apply pending migrations (under an advisory lock) and exit').action(async () => {
    const config = loadConfig();
    const db = await openDatabase(config, createJsonLogger({ level: config.LOG_LEVEL }), { migrate: true });
    await db.close();
  });

  program
    .command('token')
    .description('mint a worker token (JWT signed with WORKER_TOKEN_SECRET)')
    .option('--queues <list>', 'queues it may pull: * or a comma list', '*')
    .option('--ttl <duration>', 'lifetime, e.g. 30d', duration, 30 * 86400)
    .option('--subject <name>', 'worker name in the token', 'worker')
    .action(async (o: { queues: string; ttl: number; subject: string }) => {
      const secret = loadTokenSecret();
      const queues = o.queues.trim() === '*' ? '*' : o.queues.split(',').map((q) => q.trim()).filter(Boolean);
      process.stdout.write(`${await mintWorkerToken({ secret, queues, ttlSeconds: o.ttl, subject: o.subject })}\n`);
    });

  program
    .command('enqueue <queue> <task>')
    .description('enqueue a job through the public API')
    .option('--payload <json>', 'job payload', json)
    .option('--delay <ms>', 'start delay in ms', int)
    .option('--priority <n>', 'lower runs first', int)
    .option('--max-attempts <n>', 'attempts before failed', int)
    .option('--idempotency-key <key>', 'repeats return the first job')
    .option('--unique-key <key>', 'unique while active: repeats return the queued/running job')
    .action(async (queue: string, task: string, o: { payload?: unknown; delay?: number; priority?: number; maxAttempts?: number; idempotencyKey?: string; uniqueKey?: string }, cmd: Command) => {
      print(await client(cmd).enqueue(queue, {
        task,
        ...(o.payload !== undefined && { payload: o.payload }),
        ...(o.delay !== undefined && { delayMs: o.delay }),
        ...(o.priority !== undefined && { priority: o.priority }),
        ...(o.maxAttempts !== undefined && { maxAttempts: o.maxAttempts }),
        ...(o.idempotencyKey !== undefined && { idempotencyKey: o.idempotencyKey }),
        ...(o.uniqueKey !== undefined && { uniqueKey: o.uniqueKey }),
      }));
    });

  const jobs = program.command('jobs').description('inspect and manage jobs');
  jobs.command('get <id>').action(async (id: string, _o: unknown, cmd: Command) => print(await client(cmd).getJob(int(id))));
  jobs.command('cancel <id>').action(async (id: string, _o: unknown, cmd: Command) => print(await client(cmd).cancelJob(int(id))));
  jobs.command('retry <id>').action(async (id: string, _o: unknown, cmd: Command) => print(await client(cmd).retryJob(int(id))));
  jobs
    .command('watch <id>')
    .description('print the job\'s events until it finishes (exit 0 if it succeeded, 1 otherwise); a progress bar for { current, total }')
    .option('--after <eventId>', 'start after this event id instead of the whole history', int)
    .action(async (id: string, o: { after?: number }, cmd: Command) => {
      const c = client(cmd);
      const final = await watchJob(c.jobEvents(int(id), o.after !== undefined ? { lastEventId: o.after } : {}), process.stdout);
      const job = await c.getJob(int(id));
      if (job.state === 'succeeded') process.stdout.write(`result: ${JSON.stringify(job.result)}\n`);
      else if (job.lastError) process.stdout.write(`last error: ${job.lastError.message}\n`);
      process.exitCode = (final ?? job.state) === 'succeeded' ? 0 : 1;
    });
  jobs
    .command('bulk <op>')
    .description('retry, cancel or delete the jobs matching a filter (admin); repeats until fewer than --limit changed')
    .option('--queue <name>')
    .option('--state <state>')
    .option('--task <task>')
    .option('--created-before <iso>')
    .option('--created-after <iso>')
    .option('--limit <n>', 'jobs per statement (default 1000)', int)
    .action(async (op: string, o: { queue?: string; state?: string; task?: string; createdBefore?: string; createdAfter?: string; limit?: number }, cmd: Command) => {
      if (op !== 'retry' && op !== 'cancel' && op !== 'delete') throw new InvalidArgumentError('op must be retry, cancel or delete');
      const c = client(cmd);
      let total = 0;
      for (;;) {
        const { count } = await c.bulk(op, o as Parameters<PgDispatchClient['bulk']>[1]);
        total += count;
        if (count < (o.limit ?? 1000)) break;
      }
      print({ op, count: total });
    });
  jobs
    .command('list')
    .option('--queue <name>')
    .option('--state <state>')
    .option('--task <task>')
    .option('--limit <n>', 'page size', int)
    .option('--cursor <id>', 'nextCursor of the previous page', int)
    .action(async (o: { queue?: string; state?: string; task?: string; limit?: number; cursor?: number }, cmd: Command) =>
      print(await client(cmd).listJobs(o as Parameters<PgDispatchClient['listJobs']>[0])));

  const queues = program.command('queues').description('inspect and manage queues');
  queues.command('list').action(async (_o: unknown, cmd: Command) => print(await client(cmd).listQueues()));
  queues
    .command('create <name>')
    .description('create a queue or update its policy')
    .option('--concurrency <n>', 'max running at once', int)
    .option('--max-attempts <n>', 'default attempts', int)
    .option('--retention <seconds>', 'keep finished jobs this long', int)
    .option('--dead-letter <queue>', 'failed jobs move to this queue')
    .option('--rate-limit <n>', 'at most n claims per --rate-interval', int)
    .option('--rate-interval <ms>', 'interval of --rate-limit in ms (default 1000)', int)
    .action(async (name: string, o: { concurrency?: number; maxAttempts?: number; retention?: number; deadLetter?: string; rateLimit?: number; rateInterval?: number }, cmd: Command) =>
      print(await client(cmd).putQueue(name, {
        ...(o.concurrency !== undefined && { concurrencyLimit: o.concurrency }),
        ...(o.maxAttempts !== undefined && { defaultMaxAttempts: o.maxAttempts }),
        ...(o.retention !== undefined && { retentionSeconds: o.retention }),
        ...(o.deadLetter !== undefined && { deadLetterQueue: o.deadLetter }),
        ...(o.rateLimit !== undefined && { rateLimit: o.rateLimit }),
        ...(o.rateInterval !== undefined && { rateIntervalMs: o.rateInterval }),
      })));
  queues
    .command('redrive <name>')
    .description('send the dead-lettered jobs of a queue back to the queues they failed in')
    .option('--limit <n>', 'jobs per call (default 1000)', int)
    .action(async (name: string, o: { limit?: number }, cmd: Command) => print(await client(cmd).redrive(name, o.limit !== undefined ? { limit: o.limit } : {})));
  queues.command('pause <name>').action(async (name: string, _o: unknown, cmd: Command) => print(await client(cmd).pauseQueue(name)));
  queues.command('resume <name>').action(async (name: string, _o: unknown, cmd: Command) => print(await client(cmd).resumeQueue(name)));
  queues.command('stats <name>').action(async (name: string, _o: unknown, cmd: Command) => print(await client(cmd).queueStats(name)));
  scheduleCommands(program, client, print);
  return program;
}

/** Turns every expected failure into one clear line and an exit code; never a stack trace. */
function fail(err: unknown): never {
  if (err instanceof ConfigError) process.stderr.write(`${err.message}\n`);
  else if (err instanceof DispatchError) process.stderr.write(`error: ${err.code}: ${err.message}${err.details ? ` ${JSON.stringify(err.details)}` : ''}\n`);
  else process.stderr.write(`error: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(err instanceof ConfigError ? 78 : 1);
}

buildProgram().parseAsync(process.argv).catch(fail);
