import { getTableConfig, type PgTable } from 'drizzle-orm/pg-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../testing/database.js';
import { jobEvents, jobSteps, jobs, queues, schedules } from './tables.js';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase({ max: 1 });
});
afterAll(async () => {
  await db.drop();
});

interface Col {
  name: string;
  type: string;
  nullable: boolean;
  hasDefault: boolean;
  identity: boolean;
}

function drizzleColumns(table: PgTable): Col[] {
  return getTableConfig(table)
    .columns.map((c) => ({
      name: c.name,
      type: c.getSQLType(),
      nullable: !c.notNull,
      hasDefault: c.hasDefault || c.generatedIdentity !== undefined,
      identity: c.generatedIdentity !== undefined,
    }))
    .sort((a, b) => a.name.localeCompare(b.name));
}

async function databaseColumns(table: string): Promise<Col[]> {
  const rows = await db.sql<{ name: string; type: string; nullable: string; def: string | null; identity: string }[]>`
    select column_name as name, data_type as type, is_nullable as nullable, column_default as def, is_identity as identity
      from information_schema.columns where table_schema = 'public' and table_name = ${table}`;
  return rows
    .map((r) => ({ name: r.name, type: r.type, nullable: r.nullable === 'YES', hasDefault: r.def !== null || r.identity === 'YES', identity: r.identity === 'YES' }))
    .sort((a, b) => a.name.localeCompare(b.name));
}

describe('drizzle schema agrees with the migrated database', () => {
  it.each([
    ['queues', queues],
    ['jobs', jobs],
    ['job_steps', jobSteps],
    ['job_events', jobEvents],
    ['schedules', schedules],
  ] as const)('%s: column names, data types, nullability and defaults', async (name, table) => {
    expect(getTableConfig(table).name).toBe(name);
    expect(drizzleColumns(table)).toEqual(await databaseColumns(name));
  });

  it('primary keys match', async () => {
    const rows = await db.sql<{ table: string; cols: string[] }[]>`
      select tc.table_name as table, array_agg(kcu.column_name::text order by kcu.ordinal_position) as cols
        from information_schema.table_constraints tc
        join information_schema.key_column_usage kcu on kcu.constraint_name = tc.constraint_name and kcu.table_name = tc.table_name
       where tc.constraint_type = 'PRIMARY KEY' and tc.table_schema = 'public' and tc.table_name in ('queues', 'jobs', 'job_steps', 'job_events', 'schedules')
       group by tc.table_name`;
    const db_ = Object.fromEntries(rows.map((r) => [r.table, r.cols]));
    const fromDrizzle = (t: PgTable) => {
      const cfg = getTableConfig(t);
      const single = cfg.columns.filter((c) => c.primary).map((c) => c.name);
      return single.length > 0 ? single : (cfg.primaryKeys[0]?.columns.map((c) => c.name) ?? []);
    };
    expect({ queues: fromDrizzle(queues), jobs: fromDrizzle(jobs), job_steps: fromDrizzle(jobSteps), job_events: fromDrizzle(jobEvents), schedules: fromDrizzle(schedules) }).toEqual(db_);
  });

  it('the only tables are the mirrored ones and the migrations log', async () => {
    const rows = await db.sql<{ t: string }[]>`select table_name as t from information_schema.tables where table_schema = 'public' order by 1`;
    expect(rows.map((r) => r.t)).toEqual(['job_events', 'job_steps', 'jobs', 'pgdispatch_migrations', 'queues', 'schedules']);
  });
});
