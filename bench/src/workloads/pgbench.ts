import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { closeDb, createDb, type Sql } from '@pgdispatch/engine/db';
import { createBenchDb } from '../lib/pg-target.js';
import type { BenchContext } from '../systems/types.js';

export interface PgbenchResult {
  tool: 'pgbench' | 'node-driver';
  /** Transactions (one statement each) per second. */
  insert: number;
  update: number;
}

const ROWS = 100_000;
const SCRIPTS = {
  insert: 'insert into ref_insert (v) values (1);\n',
  update: '\\set id random(1, 100000)\nupdate ref_update set v = v + 1 where id = :id;\n',
};

/**
 * The physical-limit reference: single-row INSERT and single-row UPDATE by primary key, each its
 * own transaction (one commit), `clients` concurrent clients. pgbench when it is on PATH (prepared
 * protocol), else the same loop with the Node driver.
 */
export async function measurePgbench(ctx: BenchContext, opts: { clients: number; seconds: number }): Promise<PgbenchResult> {
  const db = await createBenchDb(ctx.target, 'pgbench');
  try {
    await db.sql.unsafe(`create table ref_insert (id bigint generated always as identity primary key, v int not null)`);
    await db.sql.unsafe(`create table ref_update (id int primary key, v int not null)`);
    await db.sql.unsafe(`insert into ref_update select g, 0 from generate_series(1, ${ROWS}) g`);
    await db.sql.unsafe('vacuum analyze');
    if (await hasPgbench()) {
      return { tool: 'pgbench', insert: await pgbench(db.url, SCRIPTS.insert, opts), update: await pgbench(db.url, SCRIPTS.update, opts) };
    }
    return { tool: 'node-driver', insert: await driverLoop(db.url, 'insert', opts), update: await driverLoop(db.url, 'update', opts) };
  } finally {
    await db.drop();
  }
}

function exec(cmd: string, args: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (b: Buffer) => (out += b.toString()));
    p.stderr.on('data', (b: Buffer) => (out += b.toString()));
    p.on('error', (err) => resolve({ code: -1, out: String(err) }));
    p.on('close', (code) => resolve({ code, out }));
  });
}

async function hasPgbench(): Promise<boolean> {
  return (await exec('pgbench', ['--version'])).code === 0;
}

async function pgbench(url: string, script: string, opts: { clients: number; seconds: number }): Promise<number> {
  const dir = await mkdtemp(path.join(tmpdir(), 'pgdispatch-pgbench-'));
  try {
    const file = path.join(dir, 'script.sql');
    await writeFile(file, script);
    const threads = Math.min(opts.clients, 2);
    const r = await exec('pgbench', ['-n', '-M', 'prepared', '-c', String(opts.clients), '-j', String(threads), '-T', String(opts.seconds), '-f', file, url]);
    const m = /tps = ([\d.]+) \(without initial connection time\)/.exec(r.out) ?? /tps = ([\d.]+)/.exec(r.out);
    if (r.code !== 0 || !m?.[1]) throw new Error(`pgbench failed (${r.code}): ${r.out.slice(-500)}`);
    return Number(m[1]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function driverLoop(url: string, kind: 'insert' | 'update', opts: { clients: number; seconds: number }): Promise<number> {
  const pools: Sql[] = Array.from({ length: opts.clients }, () => createDb({ url, max: 1, applicationName: 'pgdispatch-bench-ref' }));
  try {
    await Promise.all(pools.map((p) => p`select 1`));
    let n = 0;
    let stopped = false;
    const t0 = performance.now();
    const timer = setTimeout(() => (stopped = true), opts.seconds * 1000);
    await Promise.all(
      pools.map(async (p) => {
        while (!stopped) {
          if (kind === 'insert') await p`insert into ref_insert (v) values (1)`;
          else await p`update ref_update set v = v + 1 where id = ${1 + Math.floor(Math.random() * ROWS)}`;
          n++;
        }
      }),
    );
    clearTimeout(timer);
    return n / ((performance.now() - t0) / 1000);
  } finally {
    await Promise.all(pools.map((p) => closeDb(p, 1)));
  }
}
