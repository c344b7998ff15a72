-- Job events: one row per statement, queue and kind instead of one row per job. Forward-only.
--
-- Every claim and every completion wrote one job_events row per job (a heap tuple and three index
-- entries), about 7 µs of the ~26 µs a claim costs the server per job and the same for a
-- completion (measure-hot-path.mjs, PostgreSQL 15, batches of 250; docs/benchmarks.md "What
-- limits" 4). Now the triggers write one row for all the jobs of a statement that share a queue
-- and an event type: `job_ids` and `datas` hold them in job-id order, up to 1024 per row.
--
-- Event ids stay numbers that grow with time. The sequence now steps by 1024: a row with id R
-- holds the events R, R+1, … R+n-1 (element k of its arrays is event R+k-1), so the blocks of two
-- rows never overlap and the ids given out before this migration stay what they were. A row that
-- holds one event keeps the old form (`job_id`, `data`, arrays null): progress events, single
-- claims and completions, and every row written before this migration. Readers unnest both forms
-- alike (engine queries/job-events.ts).

alter table job_events
  alter column job_id drop not null,
  alter column data drop not null,
  add column job_ids bigint[],
  add column datas jsonb[];

-- Exactly one form per row, arrays of equal length within the block.
alter table job_events add constraint job_events_form check (
  case when job_ids is null
       then job_id is not null and data is not null and datas is null
       else job_id is null and data is null and datas is not null
            and cardinality(job_ids) between 2 and 1024 and cardinality(datas) = cardinality(job_ids)
  end);

-- A job's events held in the array form (GET /v1/jobs/:id/events); the single form keeps job_events_job_idx.
create index job_events_job_ids_idx on job_events using gin (job_ids) where job_ids is not null;

alter sequence job_events_ids increment by 1024;

-- Records the events of one statement: element i of the arrays is one job's event. Groups of up
-- to 1024 with the same queue and type become one row each (the one-event form for a group of one),
-- and the statement's event ids are announced as before (pgdispatch_notify_job_events turns them
-- into runs: a row's ids are consecutive, so one run per row).
--
-- Its only join (a row's ids, by generate_series) is a nested loop by nature, so it turns nested loops
-- back on, which the update trigger that calls it has off (0008): with them off that join cost 10^10 in
-- the plan, past jit_above_cost, and every call compiled a JIT plan (210 ms). jit is off for the same reason.
create function pgdispatch_record_events(ev_jobs bigint[], ev_queues text[], ev_types text[], ev_datas jsonb[]) returns void
language plpgsql set enable_nestloop = on set jit = off as $$
declare
  ids bigint[];
  qs text[];
begin
  with ev as (
    select e.job_id, e.queue, e.type, e.data,
           (row_number() over (partition by e.queue, e.type order by e.job_id) - 1) / 1024 as chunk
      from unnest(ev_jobs, ev_queues, ev_types, ev_datas) as e(job_id, queue, type, data)
  ), grouped as (
    select queue, type, array_agg(job_id order by job_id) as job_ids, array_agg(data order by job_id) as datas
      from ev group by queue, type, chunk
  ), ins as (
    insert into job_events (queue, type, job_id, data, job_ids, datas)
    select queue, type,
           case when cardinality(job_ids) = 1 then job_ids[1] end, case when cardinality(job_ids) = 1 then datas[1] end,
           case when cardinality(job_ids) > 1 then job_ids end, case when cardinality(job_ids) > 1 then datas end
      from grouped
    returning id, coalesce(cardinality(job_ids), 1) as n, queue
  )
  select array_agg(i.id + k), array_agg(i.queue) into ids, qs from ins i cross join lateral generate_series(0, i.n - 1) k;
  if ids is not null then
    perform pgdispatch_notify_job_events(ids, qs);
  end if;
end;
$$;

create or replace function pgdispatch_jobs_inserted() returns trigger
language plpgsql as $$
begin
  perform pgdispatch_record_events(array_agg(n.id), array_agg(n.queue), array_agg('state'::text),
                                   array_agg(jsonb_build_object('state', n.state, 'attempt', n.attempt)))
     from new_jobs n;
  return null;
end;
$$;

create or replace function pgdispatch_jobs_updated() returns trigger
language plpgsql set enable_nestloop = off as $$
begin
  perform pgdispatch_record_events(array_agg(c.job_id), array_agg(c.queue), array_agg(c.type), array_agg(c.data))
     from (
       select n.id as job_id, o.queue,
              case when n.state is distinct from o.state then 'state' else 'cancel_requested' end as type,
              jsonb_strip_nulls(jsonb_build_object(
                'state', n.state, 'attempt', n.attempt,
                'runAt', case when n.state = 'retry_waiting' then n.run_at end,
                'error', case when n.state in ('retry_waiting', 'failed') then n.last_error - 'stack' end,
                'queue', case when n.queue is distinct from o.queue then n.queue end,
                'deadLetterQueue', case when n.state = 'failed' and n.dead_letter_from is not null and o.dead_letter_from is null then n.queue end)) as data
         from new_jobs n join old_jobs o on o.id = n.id
        where n.state is distinct from o.state or (n.cancel_requested and not o.cancel_requested)
     ) c;
  return null;
end;
$$;
