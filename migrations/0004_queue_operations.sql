-- Day-to-day queue operations: dead letters, rate limits, unique-while-active keys. Forward-only.

alter table queues
  -- A job of this queue that ends `failed` moves to this queue (keeping its id, so its events and
  -- steps stay with it); null = failed jobs stay here.
  add column dead_letter_queue text check (dead_letter_queue is null or dead_letter_queue <> name),
  -- Token bucket: at most rate_limit claims per rate_interval_ms on average, bursts up to
  -- rate_limit; null = no rate limit. Tokens and their time are updated in the claim transaction
  -- under the queue row lock (docs/architecture.md §5), so the budget holds across api pods.
  add column rate_limit integer check (rate_limit is null or rate_limit between 1 and 1000000),
  add column rate_interval_ms integer not null default 1000 check (rate_interval_ms between 1 and 86400000),
  add column rate_tokens double precision,
  add column rate_updated_at timestamptz;

alter table jobs
  -- The queue a dead-lettered job came from (redrive sends it back there).
  add column dead_letter_from text,
  -- Unique while active: one queued/retry_waiting/running job per (queue, key); free again once the
  -- job finished. Beside idempotency_key, which holds for the row's lifetime.
  add column unique_key text;

create unique index jobs_unique_active_idx on jobs (queue, unique_key)
  where unique_key is not null and state in ('queued', 'retry_waiting', 'running');
-- Redrive: the dead-lettered jobs of a queue.
create index jobs_dead_letter_idx on jobs (queue, id) where dead_letter_from is not null;

-- Dead-lettering: a row trigger whose WHEN clause is evaluated without calling the function, so
-- only the rows that just became `failed` pay for it; it rewrites the row before it is stored.
create function pgdispatch_dead_letter() returns trigger
language plpgsql as $$
declare
  dlq text;
begin
  select dead_letter_queue into dlq from queues where name = new.queue;
  if dlq is not null then
    insert into queues (name) values (dlq) on conflict do nothing;
    new.dead_letter_from := new.queue;
    new.queue := dlq;
  end if;
  return new;
end;
$$;

create trigger jobs_dead_letter before update on jobs
  for each row when (new.state = 'failed' and old.state is distinct from 'failed')
  execute function pgdispatch_dead_letter();

-- Job events are recorded under the queue the job was in before the statement (a job that is
-- dead-lettered reports its failure where it failed, with `deadLetterQueue` in the data), so a
-- stream of the job or of its queue sees the final state.
create or replace function pgdispatch_jobs_updated() returns trigger
language plpgsql as $$
declare
  ids bigint[];
  qs text[];
begin
  with ins as (
    insert into job_events (job_id, queue, type, data)
    select n.id, o.queue,
           case when n.state is distinct from o.state then 'state' else 'cancel_requested' end,
           jsonb_strip_nulls(jsonb_build_object(
             'state', n.state, 'attempt', n.attempt,
             'runAt', case when n.state = 'retry_waiting' then n.run_at end,
             'error', case when n.state in ('retry_waiting', 'failed') then n.last_error - 'stack' end,
             'queue', case when n.queue is distinct from o.queue then n.queue end,
             'deadLetterQueue', case when n.state = 'failed' and n.dead_letter_from is not null and o.dead_letter_from is null then n.queue end))
      from new_jobs n join old_jobs o on o.id = n.id
     where n.state is distinct from o.state or (n.cancel_requested and not o.cancel_requested)
     order by n.id
    returning id, queue
  )
  select array_agg(id), array_agg(queue) into ids, qs from ins;
  if ids is not null then
    perform pgdispatch_notify_job_events(ids, qs);
  end if;
  return null;
end;
$$;
