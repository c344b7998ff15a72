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

-- The notification of a statement's rows: per queue, the runs [lo, hi] of event ids, 200 runs per
-- NOTIFY (the payload stays far below the 8000-byte cap).
create function pgdispatch_notify_event_runs(los bigint[], his bigint[], queues text[]) returns void
language plpgsql as $$
begin
  perform pg_notify('pgdispatch_job_events', m.queue || ' ' || m.body)
    from (
      select c.queue, string_agg(case when c.lo = c.hi then c.lo::text else c.lo || '-' || c.hi end, ',' order by c.lo) as body
        from (
          select r.queue, r.lo, r.hi, (row_number() over (partition by r.queue order by r.lo) - 1) / 200 as chunk
            from unnest(los, his, queues) as r(lo, hi, queue)
        ) c
       group by c.queue, c.chunk
    ) m;
end;
$$;

-- The events of one statement, grouped into rows. `ev` is (job_id, queue, type, data); each group
-- of up to 1024 jobs with the same queue and type becomes one row (the one-job form for a group of one).
create or replace function pgdispatch_jobs_inserted() returns trigger
language plpgsql set enable_nestloop = off as $$
declare
  los bigint[];
  his bigint[];
  qs text[];
begin
  with ev as (
    select n.id as job_id, n.queue, jsonb_build_object('state', n.state, 'attempt', n.attempt) as data,
           (row_number() over (partition by n.queue order by n.id) - 1) / 1024 as chunk
      from new_jobs n
  ), grouped as (
    select queue, array_agg(job_id order by job_id) as job_ids, array_agg(data order by job_id) as datas
      from ev group by queue, chunk
  ), ins as (
    insert into job_events (queue, type, job_id, data, job_ids, datas)
    select queue, 'state',
           case when cardinality(job_ids) = 1 then job_ids[1] end, case when cardinality(job_ids) = 1 then datas[1] end,
           case when cardinality(job_ids) > 1 then job_ids end, case when cardinality(job_ids) > 1 then datas end
      from grouped
    returning id, id + coalesce(cardinality(job_ids), 1) - 1 as hi, queue
  )
  select array_agg(id), array_agg(hi), array_agg(queue) into los, his, qs from ins;
  if los is not null then
    perform pgdispatch_notify_event_runs(los, his, qs);
  end if;
  return null;
end;
$$;

create or replace function pgdispatch_jobs_updated() returns trigger
language plpgsql set enable_nestloop = off as $$
declare
  los bigint[];
  his bigint[];
  qs text[];
begin
  with changed as (
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
  ), ev as (
    select c.*, (row_number() over (partition by c.queue, c.type order by c.job_id) - 1) / 1024 as chunk from changed c
  ), grouped as (
    select queue, type, array_agg(job_id order by job_id) as job_ids, array_agg(data order by job_id) as datas
      from ev group by queue, type, chunk
  ), ins as (
    insert into job_events (queue, type, job_id, data, job_ids, datas)
    select queue, type,
           case when cardinality(job_ids) = 1 then job_ids[1] end, case when cardinality(job_ids) = 1 then datas[1] end,
           case when cardinality(job_ids) > 1 then job_ids end, case when cardinality(job_ids) > 1 then datas end
      from grouped
    returning id, id + coalesce(cardinality(job_ids), 1) - 1 as hi, queue
  )
  select array_agg(id), array_agg(hi), array_agg(queue) into los, his, qs from ins;
  if los is not null then
    perform pgdispatch_notify_event_runs(los, his, qs);
  end if;
  return null;
end;
$$;
