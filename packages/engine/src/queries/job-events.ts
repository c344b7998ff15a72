import { DispatchError, invalidRequest } from '@pgdispatch/core/errors';
import type { JobEvent } from '@pgdispatch/core/events';
import { toStorableJson } from '@pgdispatch/core/storable';
import type { Exec } from '../db.js';
import { pg } from '../pg-errors.js';
import { refuseUnheld, scopeParam, type QueueScope } from './fenced.js';

/**
 * Channel on which every committed batch of job events is announced, payload `<queue> <ids>`
 * (see migrations/0003_job_events.sql and parseEventNotification). Events themselves are read
 * from `job_events`, so a payload never nears the 8000-byte NOTIFY cap.
 */
export const EVENTS_CHANNEL = 'pgdispatch_job_events';
/** Largest progress `data`, serialised, in bytes: events are streamed to browsers, keep them small. */
export const MAX_EVENT_BYTES = 7_800;

/**
 * A row of `job_events` holds one event (`job_id`, `data`) or the events of one statement for one
 * queue and type (`job_ids`, `datas`: event `id + k - 1` is element k), migrations/0010. `expanded`
 * turns the rows of `source` (the table, or a subquery of its rows) into one row per event, as `e`
 * and `u`; EVENT_BLOCK is how far below an event's id its row's id can be (less than).
 */
const expanded = (source = 'job_events') => `e.id + u.k - 1 as id, u.job_id as "jobId", e.queue, e.type, u.data, e.created_at as "createdAt"
  from ${source} e
  cross join lateral unnest(coalesce(e.job_ids, array[e.job_id]), coalesce(e.datas, array[e.data])) with ordinality as u(job_id, data, k)`;
export const EVENT_BLOCK = 1024;

/** Ids of one notification: ascending inclusive runs. */
export interface EventNotification {
  queue: string;
  runs: [number, number][];
}

/** Parses a `pgdispatch_job_events` payload; null for anything malformed (never throws). */
export function parseEventNotification(payload: string): EventNotification | null {
  const space = payload.indexOf(' ');
  if (space <= 0) return null;
  const runs: [number, number][] = [];
  for (const part of payload.slice(space + 1).split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (!m) return null;
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    if (!Number.isSafeInteger(lo) || !Number.isSafeInteger(hi) || hi < lo) return null;
    runs.push([lo, hi]);
  }
  return { queue: payload.slice(0, space), runs };
}

/**
 * Records a progress event for a running job, fenced by lease token and scoped to `queues`: a
 * stale holder's report inserts nothing and gets lease_lost (forbidden outside the scope). Data is
 * held to the rule of every value a job records (storable in jsonb).
 *
 * The holder row is locked `for no key update` (as a heartbeat would): a concurrent complete,
 * fail or reap waits for this insert to commit, and a report racing one that already committed
 * re-checks the token against the new row version and misses. So the events of one job commit in
 * id order, and a progress event can never be ordered before the `running` event of its attempt
 * (that event committed with the claim, before the holder could report anything).
 */
export async function jobProgress(exec: Exec, params: { id: number; leaseToken: string; data: unknown; queues?: QueueScope }): Promise<{ eventId: number }> {
  const checked = toStorableJson(params.data ?? null, 'data');
  if ('bad' in checked) {
    const { field, problem } = checked.bad;
    throw new DispatchError('invalid_request', `progress ${field} ${problem}`, { details: { field, problem } });
  }
  const bytes = Buffer.byteLength(checked.json);
  if (bytes > MAX_EVENT_BYTES) {
    throw new DispatchError('payload_too_large', `progress data is ${bytes} bytes, the limit is ${MAX_EVENT_BYTES}`, { details: { bytes, limit: MAX_EVENT_BYTES } });
  }
  const [row] = await pg(exec.unsafe<{ eventId: number | null; queue: string | null }[]>(
    `with holder as (
       select id, queue from jobs
        where id = $1 and lease_token = $2::uuid and state = 'running' and ($3::text[] is null or queue = any($3::text[]))
          for no key update
     ), ins as (
       insert into job_events (job_id, queue, type, data)
       select id, queue, 'progress', $5::text::jsonb from holder
       returning id, queue
     ), sent as (
       select id, pg_notify($4, queue || ' ' || id) from ins
     )
     select (select id from sent) as "eventId", (select queue from jobs where id = $1) as queue`,
    [params.id, params.leaseToken, scopeParam(params.queues), EVENTS_CHANNEL, checked.json] as never[],
  ));
  if (!row || row.eventId === null) throw refuseUnheld(params.id, row?.queue ?? null, params.queues);
  return { eventId: row.eventId };
}

/**
 * The events named by one notification (exactly those ids), in id order. A run's events sit in
 * rows whose ids lie at most EVENT_BLOCK - 1 below the run's start (primary-key ranges).
 */
export async function jobEventsFetch(exec: Exec, params: EventNotification): Promise<JobEvent[]> {
  if (params.runs.length === 0) return [];
  return pg(exec.unsafe<JobEvent[]>(
    `select ${expanded()}
       join unnest($1::bigint[], $2::bigint[]) as r(lo, hi) on e.id between r.lo - ${EVENT_BLOCK - 1} and r.hi
      where e.queue = $3 and e.id + u.k - 1 between r.lo and r.hi
      order by 1`,
    [params.runs.map((r) => r[0]), params.runs.map((r) => r[1]), params.queue] as never[],
  ));
}

export interface EventListParams {
  /** Events of this job (through job_events_job_idx)… */
  jobId?: number;
  /** …or of this queue (through job_events_queue_idx)… */
  queue?: string;
  /** …or of every queue (a primary-key range): the all-queue stream's resume after Last-Event-ID. */
  allQueues?: boolean;
  /** Only events with a larger id (the SSE Last-Event-ID); default 0 = from the start. */
  afterId?: number;
  /** Page size (default 500, at most 5000). */
  limit?: number;
}

/**
 * Stored events of one job or one queue after `afterId`, in id order: the replay of a stream.
 * By queue or for all queues it reads, in id order, at most `limit` rows that hold an event after
 * `afterId` (every row holds at least one), then expands them. By job
 * it reads the job's one-event rows through job_events_job_idx and its statement rows through the
 * GIN index on `job_ids`.
 */
export async function jobEventsList(exec: Exec, params: EventListParams): Promise<JobEvent[]> {
  const limit = Math.min(Math.max(Math.floor(params.limit ?? 500), 1), 5000);
  const after = params.afterId ?? 0;
  if (!Number.isSafeInteger(after) || after < 0) throw invalidRequest('afterId must be a non-negative integer');
  const low = after - (EVENT_BLOCK - 1);
  if (params.jobId !== undefined) {
    return pg(exec.unsafe<JobEvent[]>(
      `select * from (
         (select id, job_id as "jobId", queue, type, data, created_at as "createdAt" from job_events
           where job_id = $1 and id > $2 order by id limit $3)
         union all
         select ${expanded()}
          where e.job_ids @> array[$1::bigint] and e.job_ids is not null and e.id > $4 and u.job_id = $1 and e.id + u.k - 1 > $2
       ) x order by id limit $3`,
      [params.jobId, after, limit, low] as never[],
    ));
  }
  if (!params.allQueues && params.queue === undefined) throw invalidRequest('give jobId, queue or allQueues');
  // Rows holding at least one event after `after` (old one-event rows have consecutive ids, so
  // several rows can sit between `low` and `after`): `limit` of them hold `limit` events or more.
  const rows = `select * from job_events where ${params.allQueues ? '' : 'queue = $4 and '}id > $1
                   and id + coalesce(cardinality(job_ids), 1) - 1 > $2 order by id limit $3`;
  return pg(exec.unsafe<JobEvent[]>(
    `select ${expanded(`(${rows})`)}
      where e.id + u.k - 1 > $2
      order by 1 limit $3`,
    (params.allQueues ? [low, after, limit] : [low, after, limit, params.queue]) as never[],
  ));
}

/** The newest event id (0 when there is none): where a live-only stream starts. Reads the primary key's last entry. */
export async function jobEventsLatestId(exec: Exec): Promise<number> {
  const [row] = await pg(exec.unsafe<{ id: number }[]>(
    `select coalesce((select id + coalesce(cardinality(job_ids), 1) - 1 from job_events order by id desc limit 1), 0)::bigint as id`));
  return Number(row?.id ?? 0);
}

/**
 * Deletes one batch of `batchSize` rows of events older than `retentionSeconds` from the default partition of
 * `job_events` (migrations/0009): the rows no range partition covered. Range partitions are not
 * purged row by row; `jobEventPartitionsMaintain` drops them whole once retention has passed.
 * It looks only at the `batchSize` lowest ids (a primary-key range) and deletes those past
 * retention: ids grow with time, so the oldest events come first, and a partition with nothing to
 * purge costs one short index scan (no index on created_at needed). Call again while `rows` is
 * batchSize; `events` counts the events those rows held.
 *
 * The lowest ids are deleted as the closed range between the lowest and the highest of them (the
 * same rows): `id in (select …)` hashed the ids and looked each up in the primary key again, 47.7 ms
 * per 10,000 events against 18.5 ms for the range (PostgreSQL 15, 1.8M events, quiet machine). Two
 * bounds, not `id <= hi` alone: with one unknown bound the planner guesses a third of the table.
 */
export async function jobEventsPurge(exec: Exec, params: { retentionSeconds: number; batchSize?: number }): Promise<{ rows: number; events: number }> {
  const [row] = await pg(exec.unsafe<{ rows: number; events: number }[]>(
    `with oldest as materialized (
       select min(id) as lo, max(id) as hi from (select id from job_events_default order by id limit $2) o
     ), d as (
       delete from job_events_default
        where id >= (select lo from oldest) and id <= (select hi from oldest)
          and created_at < now() - make_interval(secs => $1::int)
       returning coalesce(cardinality(job_ids), 1) as n
     ) select count(*)::int as rows, coalesce(sum(n), 0)::int as events from d`,
    [params.retentionSeconds, params.batchSize ?? 10_000] as never[],
  ));
  return { rows: row?.rows ?? 0, events: row?.events ?? 0 };
}
