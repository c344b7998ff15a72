-- pgdispatch initial schema. Forward-only: never edit once released; add 0002_… instead.

create table queues (
  name                 text primary key,
  paused               boolean not null default false,
  -- max jobs of this queue running at once; null = unlimited (claims skip the queue row lock)
  concurrency_limit    integer check (concurrency_limit is null or concurrency_limit > 0),
  default_max_attempts integer not null default 5 check (default_max_attempts between 1 and 1000),
  backoff_base_ms      integer not null default 1000 check (backoff_base_ms >= 0),
  backoff_max_ms       integer not null default 3600000 check (backoff_max_ms >= 0),
  -- how long finished jobs are kept; null = the server's RETENTION_SECONDS
  retention_seconds    integer check (retention_seconds is null or retention_seconds >= 0),
  created_at           timestamptz not null default now(),
  updated_at           timestamptz not null default now()
);

-- The hot table: kept narrow (step data lives in job_steps). Times are always the database's now().
create table jobs (
  id               bigint generated always as identity primary key,
  queue            text not null,
  task             text not null,
  payload          jsonb not null default '{}'::jsonb,
  state            text not null default 'queued'
                   check (state in ('queued', 'running', 'succeeded', 'retry_waiting', 'failed', 'cancelled')),
  priority         smallint not null default 0,
  run_at           timestamptz not null default now(),
  attempt          integer not null default 0,
  max_attempts     integer not null default 5 check (max_attempts >= 1),
  lease_token      uuid,
  lease_expires_at timestamptz,
  cancel_requested boolean not null default false,
  idempotency_key  text,
  result           jsonb,
  last_error       jsonb,
  parent_id        bigint,
  created_at       timestamptz not null default now(),
  updated_at       timestamptz not null default now(),
  finished_at      timestamptz,
  check ((state = 'running') = (lease_token is not null))
);

-- Claim path: only claimable rows are in it, in claim order, so a claim is an index range scan
-- that stays O(log n + limit) however many jobs are finished or waiting in the future.
create index jobs_claim_idx on jobs (priority, run_at, id) where state in ('queued', 'retry_waiting');
-- Per-queue claim for queues with a concurrency limit (and queue-filtered listeners).
create index jobs_queue_claim_idx on jobs (queue, priority, run_at, id) where state in ('queued', 'retry_waiting');
-- Running jobs: the concurrency-limit count and the lease reaper.
create index jobs_running_idx on jobs (queue, lease_expires_at) where state = 'running';
-- Idempotent enqueue: one job per (queue, key) for as long as the row exists.
create unique index jobs_idempotency_key_idx on jobs (queue, idempotency_key) where idempotency_key is not null;
-- Listing and retention purge by state and age.
create index jobs_queue_state_id_idx on jobs (queue, state, id);
create index jobs_finished_idx on jobs (finished_at) where finished_at is not null;
create index jobs_parent_idx on jobs (parent_id) where parent_id is not null;

-- Checkpointed step results: a retry skips the steps recorded here.
create table job_steps (
  job_id     bigint not null references jobs (id) on delete cascade,
  name       text not null,
  result     jsonb,
  attempt    integer not null,
  created_at timestamptz not null default now(),
  primary key (job_id, name)
);
