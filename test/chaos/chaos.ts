/**
 * The chaos run: real processes (the built `apps/server/dist/cli.js`) on a PostgreSQL this suite
 * starts itself, broken on purpose while they work, and counted from outside (see analyse.ts).
 *
 * - two api processes on one database; workers spread over both; a queue limited to 3 at once;
 * - workers SIGKILLed at random and restarted; one api SIGKILLed while workers long-poll it
 *   (mid batch-pull) and restarted on the same port;
 * - PostgreSQL stopped for `pgStopMs` under load and started again;
 * - a stalled worker: its event loop blocked past its lease, its late result must be refused;
 * - fuzzing of the live api (fuzz.ts) once the load is done.
 *
 * `runChaos` never throws on a broken guarantee: it returns the counts, and callers assert
 * (chaos.test.ts) or print them (run.ts).
 */
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createDb } from '@pgdispatch/engine/db';
import { startEmbeddedPostgres, type EmbeddedPostgres } from '@pgdispatch/engine/embedded';
import { REPO, spawnServer, waitFor, type ServerProcess } from '../helpers/processes.js';
import { describeRequest, fuzz } from '../hostile/fuzz.js';
import { parseMarks, summarise, type ChaosSummary, type Kill, type Transition } from './analyse.js';

export interface ChaosOptions {
  jobs: number;
  /** Spread the enqueues over this long, in ms, so the kills land while jobs run. */
  produceMs: number;
  /** Chaos workers (besides the one that stalls). */
  workers: number;
  workerKills: number;
  apiKills: number;
  pgStopMs: number;
  fuzzRequests: number;
  leaseMs: number;
  /** Give up waiting for the jobs after this long, in ms. */
  timeoutMs: number;
  log?: (line: string) => void;
}

const CHAOS_TASKS = path.join(REPO, 'test/fixtures/chaos-tasks.mjs');
const API_KEY = 'chaos-admin-key-0001';
const WORKER_KEY = 'chaos-worker-key-0000000001';
const LIMIT = 3;

const freePort = () =>
  new Promise<number>((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Executions started and not yet ended, per worker pid. */
function openExecutionsByPid(text: string): Map<number, number> {
  const open = new Map<string, number>();
  for (const m of parseMarks(text)) {
    const key = `${m.id}:${m.attempt}:${m.pid}`;
    if (m.what === 'start') open.set(key, m.pid);
    else open.delete(key);
  }
  const byPid = new Map<number, number>();
  for (const pid of open.values()) byPid.set(pid, (byPid.get(pid) ?? 0) + 1);
  return byPid;
}

/** The trigger that logs every state change of a job, with the database's wall clock. */
const TRIGGER_SQL = `
  create table chaos_transitions (seq bigserial primary key, job_id bigint not null, new_state text not null, attempt int not null, at timestamptz not null default clock_timestamp());
  create function chaos_log() returns trigger language plpgsql as $$
  begin
    if tg_op = 'INSERT' or new.state is distinct from old.state then
      insert into chaos_transitions (job_id, new_state, attempt) values (new.id, new.state, new.attempt);
    end if;
    return new;
  end $$;
  create trigger chaos_log after insert or update on jobs for each row execute function chaos_log();`;

export async function runChaos(o: ChaosOptions): Promise<ChaosSummary> {
  const log = o.log ?? (() => {});
  const startedAt = Date.now();
  const dir = await mkdtemp(path.join(tmpdir(), 'pgdispatch-chaos-'));
  await chmod(dir, 0o755);
  const marksFile = path.join(dir, 'marks.log');
  writeFileSync(marksFile, '');
  await chmod(marksFile, 0o666);
  const dataDir = path.join(dir, 'data');
  const pgPort = await freePort();
  let pg: EmbeddedPostgres | undefined = await startEmbeddedPostgres({ dataDir, port: pgPort });
  const dbUrl = pg.url;
  const sql = createDb({ url: dbUrl, max: 2, connectTimeout: 2, applicationName: 'pgdispatch-chaos' });
  const procs = new Set<ServerProcess>();
  const kills: Kill[] = [];
  let pgStops = 0;
  const crashed: number[] = [];
  const heartbeatMs = String(Math.floor(o.leaseMs / 3));
  const leases = { LEASE_MS: String(o.leaseMs), HEARTBEAT_MS: heartbeatMs };
  const apiPorts = [await freePort(), await freePort()];
  const apiUrl = (i: number) => `http://127.0.0.1:${apiPorts[i]}`;
  const intended = new Set<ServerProcess>();
  let shuttingDown = false;
  const apis: ServerProcess[] = [];
  const workers: ServerProcess[] = [];
  const workerApi = new Map<ServerProcess, number>();
  /**
   * Like a supervisor (Kubernetes) would: a process that dies without being killed is counted,
   * its log tail printed, and it is started again, so the run goes on and is still checked.
   */
  const supervise = (p: ServerProcess, restart: () => Promise<unknown>) => {
    void p.exited.then(async (code) => {
      procs.delete(p);
      if (intended.has(p) || shuttingDown) return;
      crashed.push(p.pid);
      log(`process ${p.pid} died by itself (exit ${code ?? p.proc.signalCode}); restarting it. Its log ends:\n${p.output().slice(-1_500)}`);
      // It may not start while PostgreSQL is down (an api migrates at start): keep trying.
      for (let attempt = 0; !shuttingDown; attempt++) {
        await sleep(500);
        try {
          await restart();
          return;
        } catch (err) {
          if (attempt % 10 === 0) log(`restart of ${p.pid}'s role failed, retrying: ${String(err).slice(0, 200)}`);
        }
      }
    });
  };
  const startApi = async (i: number): Promise<ServerProcess> => {
    const p = await spawnServer({
      DISPATCH_ROLE: 'api', DATABASE_URL: dbUrl, PORT: String(apiPorts[i]), API_KEYS: `${API_KEY}:admin`, WORKER_KEYS: `${WORKER_KEY}:*`,
      REAPER_INTERVAL_MS: '250', POLL_INTERVAL_MS: '250', DEQUEUE_MAX_WAIT_MS: '2000', ...leases,
    }, { timeoutMs: 60_000 });
    procs.add(p);
    apis[i] = p;
    supervise(p, () => startApi(i));
    return p;
  };
  const startWorker = async (api: number, queues: string): Promise<ServerProcess> => {
    const p = await spawnServer({
      DISPATCH_ROLE: 'worker', API_URL: apiUrl(api), WORKER_TOKEN: WORKER_KEY, TASKS_MODULE: CHAOS_TASKS, LISTEN_QUEUES: queues,
      WORKER_CONCURRENCY: '8', SHUTDOWN_GRACE_MS: '1000', ...leases,
    }, { timeoutMs: 60_000 });
    procs.add(p);
    if (queues !== 'stall') {
      workers.push(p);
      workerApi.set(p, api);
    }
    supervise(p, async () => {
      const at = workers.indexOf(p);
      if (at >= 0) workers.splice(at, 1);
      await startWorker(api, queues);
    });
    return p;
  };
  const kill = async (p: ServerProcess, kind: Kill['kind'], running?: number[]) => {
    intended.add(p);
    kills.push({ kind, pid: p.pid, at: Date.now(), ...(running && { running }) });
    await p.kill('SIGKILL');
    procs.delete(p);
  };
  const call = async (i: number, method: string, p: string, body?: unknown) => {
    const res = await fetch(`${apiUrl(i)}${p}`, { method, headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' }, ...(body !== undefined && { body: JSON.stringify(body) }) });
    return { status: res.status, body: (await res.json()) as any };
  };

  try {
    // Migrate first, so the trigger can be put on the jobs table before any job exists.
    await startApi(0);
    await sql.unsafe(TRIGGER_SQL);
    await startApi(1);
    await call(0, 'PUT', '/v1/queues/limited', { concurrencyLimit: LIMIT });

    // The stalled worker: alone on its queue until its job is running, so attempt 1 is its own.
    const stallWorker = await startWorker(0, 'stall');
    const stall = await call(0, 'POST', '/v1/queues/stall/jobs', { task: 'chaos.stall', payload: { log: marksFile, ms: o.leaseMs * 2 + 1_000 }, maxAttempts: 10 });
    const stallId = stall.body.job.id as number;
    await waitFor(() => readFileSync(marksFile, 'utf8').includes(`${stallId}:1:start`), { timeoutMs: 30_000, what: 'the stalled job to start' });
    log(`stall: job ${stallId} blocks worker ${stallWorker.pid} for ${o.leaseMs * 2 + 1_000} ms`);

    await Promise.all(Array.from({ length: o.workers }, (_, i) => startWorker(i % 2, 'chaos,limited,stall')));
    log(`started 2 apis, ${o.workers + 1} workers, PostgreSQL on ${pgPort}`);

    // Producer: batches of up to 100, alternating apis, idempotency keys so a retried batch whose
    // answer was lost (api killed, PostgreSQL down) cannot enqueue twice.
    const enqueued = new Set<number>();
    const limitedIds = new Set<number>();
    const produce = (async () => {
      const batch = 50;
      const pause = o.produceMs / Math.ceil(o.jobs / batch);
      for (let i = 0, b = 0; i < o.jobs; b++) {
        const batchStart = Date.now();
        const n = Math.min(batch, o.jobs - i);
        const limited = b % 10 === 3;
        // 20–200 ms of work: long enough that a killed process always holds some jobs.
        const jobs = Array.from({ length: n }, (_, k) => ({ task: 'chaos.work', idempotencyKey: `job-${i + k}`, maxAttempts: 100, payload: { log: marksFile, ms: 20 + ((i + k) * 37) % 180 } }));
        for (let attempt = 0; ; attempt++) {
          try {
            const r = await call(b % 2, 'POST', `/v1/queues/${limited ? 'limited' : 'chaos'}/jobs/batch`, { jobs });
            if (r.status === 200 || r.status === 201) {
              for (const x of r.body.results as { job: { id: number } }[]) {
                enqueued.add(x.job.id);
                if (limited) limitedIds.add(x.job.id);
              }
              break;
            }
          } catch {
            // api down: retry below
          }
          await sleep(100);
        }
        i += n;
        await sleep(Math.max(0, pause - (Date.now() - batchStart)));
      }
    })();

    const succeededCount = async () => {
      try {
        const [r] = await sql<{ n: number }[]>`select count(distinct job_id)::int as n from chaos_transitions where new_state = 'succeeded'`;
        return r!.n;
      } catch {
        return -1; // PostgreSQL is down right now
      }
    };
    const progress = async () => (await succeededCount()) / (o.jobs + 1);

    // The chaos schedule, driven by progress so it lands under load whatever the machine's speed.
    const events: { at: number; run: () => Promise<void> }[] = [];
    for (let k = 0; k < o.workerKills; k++) {
      events.push({
        at: 0.1 + (0.8 * (k + Math.random())) / o.workerKills,
        run: async () => {
          // At random among the workers running something right now (from the marks file), so
          // every kill leaves jobs behind whose recovery is measured.
          let busy: ServerProcess[] = [];
          for (let tries = 0; tries < 100 && busy.length === 0; tries++) {
            const open = openExecutionsByPid(readFileSync(marksFile, 'utf8'));
            busy = workers.filter((w) => (open.get(w.pid) ?? 0) > 0);
            if (busy.length === 0) await sleep(20);
          }
          const pool = busy.length > 0 ? busy : workers;
          const victim = pool[Math.floor(Math.random() * pool.length)]!;
          const api = workerApi.get(victim)!;
          await kill(victim, 'worker');
          workers.splice(workers.indexOf(victim), 1);
          log(`killed worker ${victim.pid}`);
          await sleep(300 + Math.random() * 700);
          await startWorker(api, 'chaos,limited,stall');
        },
      });
    }
    for (let k = 0; k < o.apiKills; k++) {
      events.push({
        at: 0.3 + (0.4 * k) / Math.max(1, o.apiKills),
        run: async () => {
          // Its workers are long-polling it (batch pull); what runs now is the set to watch.
          const running = (await sql<{ id: number }[]>`select id from jobs where state = 'running' and queue <> 'stall'`).map((r) => r.id);
          await kill(apis[1]!, 'api', running);
          log(`killed api ${kills.at(-1)!.pid} with ${running.length} jobs running`);
          await sleep(1_000);
          await startApi(1);
        },
      });
    }
    if (o.pgStopMs > 0) {
      events.push({
        at: 0.55,
        run: async () => {
          await pg!.stop();
          pgStops++;
          log(`PostgreSQL stopped for ${o.pgStopMs} ms`);
          await sleep(o.pgStopMs);
          pg = await startEmbeddedPostgres({ dataDir, port: pgPort });
          log('PostgreSQL started again');
        },
      });
    }
    events.sort((a, b) => a.at - b.at);
    const deadline = startedAt + o.timeoutMs;
    for (const e of events) {
      while ((await progress()) < e.at && Date.now() < deadline) await sleep(50);
      await e.run();
    }
    await produce;
    // Every enqueued job, and the stalled one, succeeded — or the time is up.
    while (Date.now() < deadline) {
      const [r] = await sql<{ n: number }[]>`select count(*)::int as n from jobs where state <> 'succeeded'`.catch(() => [{ n: -1 }]);
      if (r!.n === 0) break;
      await sleep(200);
    }
    log('load done; fuzzing the live api');
    const ids = (await sql<{ id: number }[]>`select id from jobs order by id limit 500`).map((r) => r.id);
    const fz = o.fuzzRequests > 0
      ? await fuzz({ url: apiUrl(0), apiKey: API_KEY, workerKey: WORKER_KEY, jobIds: ids, leases: [] }, { runs: o.fuzzRequests, seed: 424242 })
      : { requests: 0, fiveXX: 0, problems: [] };
    for (const p of fz.problems.slice(0, 5)) log(`fuzz problem: ${p.why} (${p.status}) ← ${describeRequest(p.request)} → ${p.body}`);
    // 503 + Retry-After is the documented answer while the database is unreachable or a statement
    // must be retried; counted apart from every other 5xx, which is a defect.
    const unavailable = fz.problems.filter((p) => p.status === 503).length;
    const endedAt = Date.now();

    const transitions: Transition[] = (await sql<{ jobId: number; newState: string; attempt: number; at: Date }[]>`
      select job_id as "jobId", new_state as "newState", attempt, at from chaos_transitions order by seq`).map((t) => ({ ...t, at: t.at.getTime() }));
    const [stalled] = await sql<{ attempt: number | null }[]>`select (result->>'attempt')::int as attempt from jobs where id = ${stallId}`;
    return summarise({
      enqueued: [...enqueued],
      marks: parseMarks(readFileSync(marksFile, 'utf8')),
      transitions,
      kills,
      limitedIds,
      limit: LIMIT,
      stallId,
      stallStoredAttempt: stalled?.attempt ?? null,
      pgStops,
      crashed: crashed.length,
      fuzz: { requests: fz.requests, fiveXX: fz.fiveXX - unavailable, unavailable, problems: fz.problems.length - unavailable },
      startedAt,
      endedAt,
    });
  } finally {
    shuttingDown = true;
    await Promise.all([...procs].map((p) => p.kill('SIGKILL')));
    await sql.end({ timeout: 1 }).catch(() => {});
    await pg?.stop().catch(() => {});
    if (process.env.CHAOS_KEEP_DIR) appendFileSync(path.join(dir, 'kept'), 'kept\n');
    else await rm(dir, { recursive: true, force: true });
  }
}
