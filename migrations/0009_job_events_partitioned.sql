-- Job events in a table partitioned by created_at: retention drops whole partitions. Forward-only.
--
-- Until now the maintenance loop deleted expired events row by row, about three per job. In the
-- bench's soak (2M jobs at ~8,000 jobs/s, 30 s retention) those deletes ran in batches of 10,000
-- at 150–380 ms each under load, about as much database work per job as processing the job, and
-- they fell behind (docs/benchmarks.md, "What limits" 15). Dropping a partition costs the same
-- whatever it holds and leaves no dead rows to vacuum.
--
-- Layout: range partitions named job_events_<from>_<to> (epoch seconds; from = 0 means MINVALUE),
-- created ahead of time by the api's maintenance (engine queries/job-event-partitions.ts), which
-- also drops those whose upper bound has passed the retention. A default partition catches any
-- row no range covers (maintenance not running, a partition not yet created); its rows are purged
-- one by one as before, so an event can never fail to be written.
--
-- The primary key has to include the partition key: (id, created_at). Ids still come from one
-- sequence, so every reader that looks events up by id, job or queue is unchanged.

alter table job_events rename to job_events_unpartitioned;
alter index job_events_pkey rename to job_events_unpartitioned_pkey;
alter index job_events_job_idx rename to job_events_unpartitioned_job_idx;
alter index job_events_queue_idx rename to job_events_unpartitioned_queue_idx;

create sequence job_events_ids as bigint;
select setval('job_events_ids', coalesce((select max(id) from job_events_unpartitioned), 0) + 1, false);

create table job_events (
  id         bigint not null default nextval('job_events_ids'),
  job_id     bigint not null,
  queue      text not null,
  -- state | cancel_requested | progress
  type       text not null,
  data       jsonb not null,
  created_at timestamptz not null default now(),
  primary key (id, created_at)
) partition by range (created_at);
alter sequence job_events_ids owned by job_events.id;
-- GET /v1/jobs/:id/events replay and the latest progress of a job.
create index job_events_job_idx on job_events (job_id, id);
-- GET /v1/queues/:name/events replay.
create index job_events_queue_idx on job_events (queue, id);

create table job_events_default partition of job_events default;

-- The events kept so far, and those of the first minute after this migration, go to one range
-- partition; it is dropped whole once its last minute has passed the retention. Maintenance
-- creates the next partitions from its upper bound on.
do $$
declare
  upper_s bigint := ceil(extract(epoch from now() + interval '1 minute'))::bigint;
begin
  execute format('create table %I partition of job_events for values from (minvalue) to (to_timestamp(%s))',
                 'job_events_0_' || upper_s, upper_s);
end;
$$;

insert into job_events (id, job_id, queue, type, data, created_at)
select id, job_id, queue, type, data, created_at from job_events_unpartitioned;
drop table job_events_unpartitioned;
