-- Durable job events: every state change of a job and every progress report, kept for
-- EVENT_RETENTION_SECONDS and pushed to every api process by NOTIFY. Forward-only.
--
-- The hot `jobs` table stays as it was: events live here, append-only, purged in id order by
-- the maintenance loop. No foreign key to jobs: an insert per event would have to check it, and
-- events may outlive a purged job until their own retention.
create table job_events (
  id         bigint generated always as identity primary key,
  job_id     bigint not null,
  queue      text not null,
  -- state | cancel_requested | progress
  type       text not null,
  data       jsonb not null,
  created_at timestamptz not null default now()
);
-- GET /v1/jobs/:id/events replay and the latest progress of a job.
create index job_events_job_idx on job_events (job_id, id);
-- GET /v1/queues/:name/events replay.
create index job_events_queue_idx on job_events (queue, id);

-- NOTIFY payload: `<queue> <ids>`, ids as ascending runs `lo-hi` or single ids, comma-separated,
-- at most 200 runs per notification (well under the 8000-byte cap). The api process fetches
-- exactly those ids, so concurrent statements whose ids interleave are never delivered twice.
create function pgdispatch_notify_job_events(ids bigint[], queues text[]) returns void
language sql as $$
  select pg_notify('pgdispatch_job_events', m.queue || ' ' || m.body)
    from (
      select c.queue, string_agg(case when c.lo = c.hi then c.lo::text else c.lo || '-' || c.hi end, ',' order by c.lo) as body
        from (
          select i.queue, i.lo, i.hi, (row_number() over (partition by i.queue order by i.lo) - 1) / 200 as chunk
            from (
              select s.queue, min(s.id) as lo, max(s.id) as hi
                from (
                  select e.queue, e.id, e.id - row_number() over (partition by e.queue order by e.id) as grp
                    from unnest(ids, queues) as e(id, queue)
                ) s
               group by s.queue, s.grp
            ) i
        ) c
       group by c.queue, c.chunk
    ) m;
$$;

-- Statement-level triggers with transition tables: one INSERT … SELECT per statement however
-- many rows it changed, so batch enqueue/claim/complete/fail pay once per batch (cost measured in
-- docs/architecture.md §14). Every writer of `jobs` is covered without touching its SQL.
create function pgdispatch_jobs_inserted() returns trigger
language plpgsql as $$
declare
  ids bigint[];
  qs text[];
begin
  with ins as (
    insert into job_events (job_id, queue, type, data)
    select n.id, n.queue, 'state', jsonb_build_object('state', n.state, 'attempt', n.attempt)
      from new_jobs n
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

create function pgdispatch_jobs_updated() returns trigger
language plpgsql as $$
declare
  ids bigint[];
  qs text[];
begin
  with ins as (
    insert into job_events (job_id, queue, type, data)
    select n.id, n.queue,
           case when n.state is distinct from o.state then 'state' else 'cancel_requested' end,
           jsonb_strip_nulls(jsonb_build_object(
             'state', n.state, 'attempt', n.attempt,
             'runAt', case when n.state = 'retry_waiting' then n.run_at end,
             'error', case when n.state in ('retry_waiting', 'failed') then n.last_error - 'stack' end))
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

create trigger jobs_events_insert after insert on jobs
  referencing new table as new_jobs
  for each statement execute function pgdispatch_jobs_inserted();
create trigger jobs_events_update after update on jobs
  referencing old table as old_jobs new table as new_jobs
  for each statement execute function pgdispatch_jobs_updated();
