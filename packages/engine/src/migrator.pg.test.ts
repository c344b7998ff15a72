import { spawn } from 'node:child_process';
import { access, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { randomBytes } from 'node:crypto';
import { closeDb, createDb, type Sql } from './db.js';
import { defaultMigrationsDir, loadMigrations, migrate, migrationStatus } from './migrator.js';
import { jobEventsList } from './queries/job-events.js';

const distDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../dist');
const admin = () => createDb({ url: inject('pgAdminUrl'), max: 1 });

/** A fresh, empty (not migrated) database; dropped after the file. */
const created: string[] = [];
async function emptyDatabase(): Promise<string> {
  const name = `pgdispatch_t_mig_${randomBytes(5).toString('hex')}`;
  const a = admin();
  await a.unsafe(`create database ${name}`);
  await closeDb(a);
  created.push(name);
  const u = new URL(inject('pgAdminUrl'));
  u.pathname = `/${name}`;
  return u.toString();
}

let tmp: string;
const pools: Sql[] = [];
const open = (url: string) => {
  const s = createDb({ url, max: 2 });
  pools.push(s);
  return s;
};
beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'pgdispatch-mig-'));
});
afterAll(async () => {
  await Promise.all(pools.map((p) => closeDb(p, 1)));
  const a = admin();
  for (const name of created) await a.unsafe(`drop database if exists ${name} with (force)`);
  await closeDb(a);
  await rm(tmp, { recursive: true, force: true });
});

/** Runs `node script url` and resolves with its exit code and output. */
function runNode(script: string, url: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, url], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('migrate', () => {
  it('applies every migration once and records it; a second run applies nothing', async () => {
    const sql = open(await emptyDatabase());
    const all = await loadMigrations();
    expect(all.map((m) => m.name)[0]).toBe('0001_init');
    expect(await migrationStatus(sql)).toEqual({ current: false, applied: [], pending: all.map((m) => m.name) });
    expect(await migrate(sql)).toEqual({ applied: all.map((m) => m.name), current: all.at(-1)!.name });
    expect(await migrate(sql)).toEqual({ applied: [], current: all.at(-1)!.name });
    expect(await migrationStatus(sql)).toEqual({ current: true, applied: all.map((m) => m.name), pending: [] });
    // Exactly one row per migration file, in order: nothing missing, nothing recorded twice by the second run.
    const rows = await sql`select version from pgdispatch_migrations order by version`;
    expect(rows.map((r) => r.version)).toEqual(all.map((m) => m.name.slice(0, 4)));
  });

  it('a failing migration rolls back whole: nothing of the batch is applied or recorded', async () => {
    const dir = path.join(tmp, 'bad');
    await import('node:fs/promises').then((fs) => fs.mkdir(dir));
    await writeFile(path.join(dir, '0001_ok.sql'), 'create table made_by_ok (id int);');
    await writeFile(path.join(dir, '0002_broken.sql'), 'create table oops (;');
    await writeFile(path.join(dir, 'README.md'), 'not a migration');
    const sql = open(await emptyDatabase());
    await expect(migrate(sql, { dir })).rejects.toThrow();
    const [t] = await sql`select to_regclass('made_by_ok') is null as gone, to_regclass('pgdispatch_migrations') is null as no_log`;
    expect(t).toEqual({ gone: true, no_log: true });
    expect((await migrationStatus(sql, { dir })).pending).toEqual(['0001_ok', '0002_broken']);
  });

  it('two OS processes migrating one fresh database at once both succeed, and each migration is applied once', async () => {
    await access(path.join(distDir, 'migrator.js')).catch(() => {
      throw new Error('packages/engine/dist is missing: run `npm run build` first (npm test does)');
    });
    const script = path.join(tmp, 'migrate.mjs');
    await writeFile(
      script,
      `import { createDb, closeDb } from ${JSON.stringify(pathToFileURL(path.join(distDir, 'db.js')).href)};
import { migrate } from ${JSON.stringify(pathToFileURL(path.join(distDir, 'migrator.js')).href)};
const sql = createDb({ url: process.argv[2], max: 1 });
try {
  process.stdout.write(JSON.stringify(await migrate(sql)));
} finally {
  await closeDb(sql);
}
`,
    );
    const url = await emptyDatabase();
    const results = await Promise.all([runNode(script, url), runNode(script, url)]);
    for (const r of results) expect(r, r.stderr).toMatchObject({ code: 0 });
    const outputs = results.map((r) => JSON.parse(r.stdout) as { applied: string[] });
    const names = (await loadMigrations()).map((m) => m.name);
    expect(outputs.flatMap((o) => o.applied).sort()).toEqual(names.sort());
    const sql = open(url);
    const rows = await sql`select version, count(*)::int as n from pgdispatch_migrations group by version order by version`;
    expect(rows).toEqual(names.map((n) => ({ version: n.slice(0, 4), n: 1 })));
    expect((await migrationStatus(sql)).current).toBe(true);
  });

  it('0009 moves the kept job events into the partitioned table: same rows, ids continue, the trigger still writes', async () => {
    const dir = path.join(tmp, 'upto-0008');
    const fs = await import('node:fs/promises');
    await fs.mkdir(dir);
    const all = await loadMigrations();
    for (const m of all.filter((m) => m.name < '0009')) await fs.copyFile(path.join(defaultMigrationsDir(), `${m.name}.sql`), path.join(dir, `${m.name}.sql`));
    const sql = open(await emptyDatabase());
    await migrate(sql, { dir });
    await sql`insert into jobs (queue, task) select 'mig', 't' from generate_series(1, 3)`;
    await sql`insert into jobs (queue, task, state, attempt, finished_at) select 'mig', 't', 'succeeded', 1, now() from generate_series(1, 3)`;
    const before = await sql`select id, job_id, queue, type, data, created_at from job_events order by id`;
    expect(before).toHaveLength(6);
    await migrate(sql);
    const after = await sql`select id, job_id, queue, type, data, created_at from job_events order by id`;
    expect(after).toEqual(before);
    const [p] = await sql`select c.relkind from pg_class c where c.relname = 'job_events'`;
    expect(p!.relkind).toBe('p');
    await sql`insert into jobs (queue, task) values ('mig', 't')`;
    const [last] = await sql<{ id: number; type: string }[]>`select id, type from job_events order by id desc limit 1`;
    expect(last!.id).toBeGreaterThan(before.at(-1)!.id as number);
    expect(last!.type).toBe('state');
  });

  it('0010 keeps the one-event rows and their ids; later statements write rows whose events all follow them', async () => {
    const dir = path.join(tmp, 'upto-0009');
    const fs = await import('node:fs/promises');
    await fs.mkdir(dir);
    for (const m of (await loadMigrations()).filter((m) => m.name < '0010')) await fs.copyFile(path.join(defaultMigrationsDir(), `${m.name}.sql`), path.join(dir, `${m.name}.sql`));
    const sql = open(await emptyDatabase());
    await migrate(sql, { dir });
    await sql`insert into jobs (queue, task) select 'mig', 't' from generate_series(1, 3)`;
    const before = await sql<{ id: number; jobId: number; data: unknown }[]>`select id, job_id as "jobId", data from job_events order by id`;
    expect(before.map((e) => e.id)).toEqual([1, 2, 3]);
    await migrate(sql);
    expect((await jobEventsList(sql, { allQueues: true })).map(({ id, jobId, data }) => ({ id, jobId, data }))).toEqual([...before]);
    const more = await sql<{ id: number }[]>`insert into jobs (queue, task) select 'mig', 't' from generate_series(1, 3) returning id`;
    const after = await jobEventsList(sql, { allQueues: true, afterId: 3 });
    expect(after.map((e) => e.jobId)).toEqual(more.map((r) => r.id));
    expect(after.map((e) => e.id)).toEqual([0, 1, 2].map((k) => after[0]!.id + k));
    expect(after[0]!.id).toBeGreaterThan(3);
    const [row] = await sql<{ n: number }[]>`select count(*)::int as n from job_events where job_ids is not null`;
    expect(row!.n).toBe(1);
  });
});
