import { sql } from 'drizzle-orm';
import { bigint, boolean, doublePrecision, integer, jsonb, pgTable, primaryKey, smallint, text, timestamp, uuid } from 'drizzle-orm/pg-core';

// Mirrors migrations/*.sql (the SQL files are the truth; schema.pg.test.ts checks they agree).
// Used for typed admin queries; hot paths use hand-written SQL in queries/.

export const queues = pgTable('queues', {
  name: text('name').primaryKey(),
  paused: boolean('paused').notNull().default(false),
  concurrencyLimit: integer('concurrency_limit'),
  defaultMaxAttempts: integer('default_max_attempts').notNull().default(5),
  backoffBaseMs: integer('backoff_base_ms').notNull().default(1000),
  backoffMaxMs: integer('backoff_max_ms').notNull().default(3600000),
  retentionSeconds: integer('retention_seconds'),
  deadLetterQueue: text('dead_letter_queue'),
  rateLimit: integer('rate_limit'),
  rateIntervalMs: integer('rate_interval_ms').notNull().default(1000),
  rateTokens: doublePrecision('rate_tokens'),
  rateUpdatedAt: timestamp('rate_updated_at', { withTimezone: true }),
  createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
});

export const jobs = pgTable('jobs', {
  id: bigint('id', { mode: 'number' }).primaryKey().generatedAlwaysAsIdentity(),
  queue: text('queue').notNull(),
  task: text('task').notNull(),
  payload: jsonb('payload').notNull().default(sql`'{}'::jsonb`),
  state: text('state').notNull().default('queued'),
  priority: smallint('priority').notNull().default(0),
  runAt: timestamp('run_at', { withTimezone: true }).notNull().defaultNow(),
  attempt: integer('attempt').notNull().default(0),
  maxAttempts: integer('max_attempts').notNull().default(5),
  leaseToken: uuid('lease_token'),
  leaseExpiresAt: timestamp('lease_expires_at', { withTimezone: true }),
  cancelRequested: boolean('cancel_requested').notNull().default(false),
  idempotencyKey: text('idempotency_key'),
  result: jsonb('result'),
  lastError: jsonb('last_error'),
  parentId: bigint('parent_id', { mode: 'number' }),
  createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  finishedAt: timestamp('finished_at', { withTimezone: true }),
  deadLetterFrom: text('dead_letter_from'),
  uniqueKey: text('unique_key'),
});

export const jobSteps = pgTable(
  'job_steps',
  {
    jobId: bigint('job_id', { mode: 'number' }).notNull().references(() => jobs.id, { onDelete: 'cascade' }),
    name: text('name').notNull(),
    result: jsonb('result'),
    attempt: integer('attempt').notNull(),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.jobId, t.name] })],
);

export const jobEvents = pgTable('job_events', {
  id: bigint('id', { mode: 'number' }).primaryKey().generatedAlwaysAsIdentity(),
  jobId: bigint('job_id', { mode: 'number' }).notNull(),
  queue: text('queue').notNull(),
  type: text('type').notNull(),
  data: jsonb('data').notNull(),
  createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
});

export const schedules = pgTable('schedules', {
  name: text('name').primaryKey(),
  cron: text('cron').notNull(),
  timeZone: text('time_zone').notNull().default('UTC'),
  queue: text('queue').notNull(),
  task: text('task').notNull(),
  payload: jsonb('payload').notNull().default(sql`'{}'::jsonb`),
  priority: smallint('priority').notNull().default(0),
  maxAttempts: integer('max_attempts'),
  enabled: boolean('enabled').notNull().default(true),
  catchUp: text('catch_up').notNull().default('latest'),
  nextRunAt: timestamp('next_run_at', { withTimezone: true }).notNull(),
  lastTickAt: timestamp('last_tick_at', { withTimezone: true }),
  lastJobId: bigint('last_job_id', { mode: 'number' }),
  createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
});
