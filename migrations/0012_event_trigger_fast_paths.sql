-- Job events: a statement's fixed cost in the triggers, cut. Forward-only.
--
-- At one job per statement (a pickup's claim, a limited queue's refill, a single enqueue or
-- completion) the event triggers cost the server ~180 µs of CPU per statement: of a one-job claim's
-- ~430 µs, against ~250 with the update trigger off (measure-hot-path.mjs, embedded PostgreSQL 18.4,
-- 2,000 jobs, batches of 1, server backend CPU). Three parts of it are gone here:
--
-- * The SET clauses. pgdispatch_jobs_updated ran with enable_nestloop = off (0008) and
--   pgdispatch_record_events set it back on with jit off (0010): each call saved and restored the
--   settings, ~40 µs per statement for both. The update trigger now keeps its transition-table join
--   off nested loops another way: statements of fewer than SMALL (32) rows take one branch and the
--   rest another, and PL/pgSQL caches each branch's plan on its own first call. The large branch is
--   therefore first planned for at least 32 rows on each side, where the planner takes a hash or merge
--   join, and keeps it for every larger batch (0008's failure was a plan cached for one row and reused
--   for 500: 249,500 comparisons). The small branch may cache a nested loop; it never sees more than
--   31 × 31 pairs. event-trigger-plan.pg.test.ts checks both, on the connection's first updates.
-- * One event: no grouping, no run-building window query. One row in the one-event form and its
--   notification, written directly; the id and the notification body are what the general path gives
--   a group of one (`<queue> <id>`). The general path is 0010's function, renamed
--   pgdispatch_record_event_groups and called for two events or more.
-- * No events (a heartbeat, a lease extension): the function returns before its statement.
--
-- Measured (same script and database, medians of 3): one-job claim 434 → 349 µs, one-job completion
-- 771 → 689 µs of server CPU; at batches of 16 and 250 within the drift (docs/benchmarks.md "What limits" 16).

-- 0010's function keeps the general path under its own name, without its settings.
alter function pgdispatch_record_events(bigint[], text[], text[], jsonb[]) rename to pgdispatch_record_event_groups;
alter function pgdispatch_record_event_groups(bigint[], text[], text[], jsonb[]) reset all;

create function pgdispatch_record_events(ev_jobs bigint[], ev_queues text[], ev_types text[], ev_datas jsonb[]) returns void
language plpgsql as $$
declare
  one bigint;
begin
  if ev_jobs is null or cardinality(ev_jobs) = 0 then
    return;
  end if;
  if cardinality(ev_jobs) > 1 then
    perform pgdispatch_record_event_groups(ev_jobs, ev_queues, ev_types, ev_datas);
    return;
  end if;
  insert into job_events (queue, type, job_id, data) values (ev_queues[1], ev_types[1], ev_jobs[1], ev_datas[1])
    returning id into one;
  perform pg_notify('pgdispatch_job_events', ev_queues[1] || ' ' || one);
end;
$$;

-- The event of one changed row: a state change, or a cancel request on a job whose state stayed.
create or replace function pgdispatch_job_event_data(n jobs, o jobs) returns jsonb
language sql stable parallel safe as $$
  select jsonb_strip_nulls(jsonb_build_object(
    'state', n.state, 'attempt', n.attempt,
    'runAt', case when n.state = 'retry_waiting' then n.run_at end,
    'error', case when n.state in ('retry_waiting', 'failed') then n.last_error - 'stack' end,
    'queue', case when n.queue is distinct from o.queue then n.queue end,
    'deadLetterQueue', case when n.state = 'failed' and n.dead_letter_from is not null and o.dead_letter_from is null then n.queue end))
$$;

create or replace function pgdispatch_jobs_updated() returns trigger
language plpgsql as $$
begin
  -- Two copies of one statement, so that each caches its own plan (see the header): SMALL = 32.
  if (select count(*) from (select 1 from new_jobs limit 32) s) < 32 then
    perform pgdispatch_record_events(array_agg(n.id), array_agg(o.queue),
                                     array_agg(case when n.state is distinct from o.state then 'state' else 'cancel_requested' end),
                                     array_agg(pgdispatch_job_event_data(n, o)))
       from new_jobs n join old_jobs o on o.id = n.id
      where n.state is distinct from o.state or (n.cancel_requested and not o.cancel_requested);
  else
    perform pgdispatch_record_events(array_agg(n.id), array_agg(o.queue),
                                     array_agg(case when n.state is distinct from o.state then 'state' else 'cancel_requested' end),
                                     array_agg(pgdispatch_job_event_data(n, o)))
       from new_jobs n join old_jobs o on o.id = n.id
      where n.state is distinct from o.state or (n.cancel_requested and not o.cancel_requested);
  end if;
  return null;
end;
$$;
