-- Job events: the NOTIFY body function in PL/pgSQL. Forward-only.
--
-- 0003 wrote pgdispatch_notify_job_events in `language sql`, which PostgreSQL before 18 plans
-- afresh on every call; every statement that changes jobs calls it once (from the statement-level
-- event triggers). PL/pgSQL caches the plan per connection. Same statement, same notifications.
-- Measured with packages/engine/scripts/measure-hot-path.mjs (server backend CPU, PostgreSQL 15,
-- claims and completions of 16 jobs, the bounded mode's size): claim 85–89 → 75–80 µs/job,
-- complete 100–104 → 90–93 µs/job, i.e. ~0.15 ms less per statement. PostgreSQL 18 caches the plans
-- of SQL functions itself, so there the gain is smaller.

create or replace function pgdispatch_notify_job_events(ids bigint[], queues text[]) returns void
language plpgsql as $$
begin
  perform pg_notify('pgdispatch_job_events', m.queue || ' ' || m.body)
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
end;
$$;