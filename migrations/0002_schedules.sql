-- Recurring jobs. Every api/all process runs the scheduler loop; a due tick is claimed with
-- `for update skip locked` on its row, enqueued with the idempotency key
-- `schedule:<name>:<tick ISO time>` and next_run_at advanced in the same transaction, so many
-- pods never fire a tick twice and a crash before commit leaves the tick due (docs/architecture.md, "Scheduler").
create table schedules (
  name         text primary key check (name ~ '^[a-z0-9][a-z0-9._-]{0,63}$'),
  -- 5 fields, or 6 with seconds first; validated by croner before it is stored
  cron         text not null,
  time_zone    text not null default 'UTC',
  queue        text not null check (queue ~ '^[a-z0-9][a-z0-9._-]{0,63}$'),
  task         text not null check (length(task) between 1 and 128),
  payload      jsonb not null default '{}'::jsonb,
  priority     smallint not null default 0,
  -- null = the queue's default_max_attempts
  max_attempts integer check (max_attempts is null or max_attempts between 1 and 1000),
  enabled      boolean not null default true,
  -- ticks missed while no scheduler ran: all (the newest 100), latest (one), none
  catch_up     text not null default 'latest' check (catch_up in ('all', 'latest', 'none')),
  -- the oldest tick not yet fired, in the database's time; recomputed from now() on resume
  next_run_at  timestamptz not null,
  last_tick_at timestamptz,
  last_job_id  bigint,
  created_at   timestamptz not null default now(),
  updated_at   timestamptz not null default now()
);

-- The scheduler's only read: due enabled schedules, oldest first.
create index schedules_due_idx on schedules (next_run_at) where enabled;
