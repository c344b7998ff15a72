import { useState } from 'preact/hooks';
import { api, JOB_STATES, type BulkFilter, type Job, type JobState } from '../api.js';
import { ErrorNote, StateBadge } from '../components.js';
import { ago, time } from '../format.js';
import { useNow, usePoll } from '../hooks.js';
import { fallbackPollMs, useLiveReload } from '../live.js';
import { BulkActions } from './bulk.js';

interface Filter {
  queue: string;
  state: string;
  task: string;
  /** datetime-local value (local time), '' = any. */
  after: string;
}

function filterFrom(q: URLSearchParams): Filter {
  return { queue: q.get('queue') ?? '', state: q.get('state') ?? '', task: q.get('task') ?? '', after: q.get('after') ?? '' };
}

function bulkFilter(f: Filter): BulkFilter {
  return {
    ...(f.queue && { queue: f.queue }),
    ...(f.state && { state: f.state as JobState }),
    ...(f.task && { task: f.task }),
    ...(f.after && { createdAfter: new Date(f.after).toISOString() }),
  };
}

/** The filter lives in the hash (`#/jobs?queue=a&state=failed`), so a view can be bookmarked. */
function hrefFor(f: Filter): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(f)) if (v) q.set(k, v);
  const s = q.toString();
  return `#/jobs${s ? `?${s}` : ''}`;
}

export function JobTable(props: { jobs: Job[]; caption?: string }) {
  const now = useNow(5000);
  return (
    <div class="table-wrap">
      <table class="jobs">
        {props.caption ? <caption>{props.caption}</caption> : null}
        <thead>
          <tr>
            <th scope="col">id</th>
            <th scope="col">queue</th>
            <th scope="col">task</th>
            <th scope="col">state</th>
            <th scope="col">attempt</th>
            <th scope="col">created</th>
            <th scope="col">finished</th>
          </tr>
        </thead>
        <tbody>
          {props.jobs.map((j) => (
            <tr key={j.id} data-job={j.id}>
              <td>
                <a href={`#/jobs/${j.id}`}>#{j.id}</a>
              </td>
              <td>{j.queue}</td>
              <td>{j.task}</td>
              <td data-testid="state">
                <StateBadge state={j.state} />
              </td>
              <td>
                {j.attempt}/{j.maxAttempts}
              </td>
              <td title={time(j.createdAt)}>{ago(j.createdAt, now)}</td>
              <td title={time(j.finishedAt)}>{j.finishedAt ? ago(j.finishedAt, now) : '—'}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

export function JobsPage(props: { query: URLSearchParams }) {
  const filter = filterFrom(props.query);
  const [draft, setDraft] = useState<Filter>(filter);
  // Cursor paging: a stack of the cursors that led here, so "newer" goes back one page.
  const [cursors, setCursors] = useState<number[]>([]);
  const cursor = cursors.at(-1);
  const key = hrefFor(filter);
  const queues = usePoll((signal) => api<{ queues: { name: string }[] }>('/v1/queues', { signal }), 15_000, []);
  const page = usePoll(
    (signal) => {
      const q = new URLSearchParams();
      if (filter.queue) q.set('queue', filter.queue);
      if (filter.state) q.set('state', filter.state);
      if (filter.task) q.set('task', filter.task);
      if (filter.after) q.set('createdAfter', new Date(filter.after).toISOString());
      if (cursor !== undefined) q.set('cursor', String(cursor));
      q.set('limit', '50');
      return api<{ jobs: Job[]; nextCursor: number | null }>(`/v1/jobs?${q}`, { signal });
    },
    fallbackPollMs(),
    [key, cursor],
  );
  // Live: a state change of a job (of the filtered queue) refetches the page, at most twice a second.
  useLiveReload(page.reload, filter.queue ? { queue: filter.queue } : {});
  const apply = (e: Event) => {
    e.preventDefault();
    setCursors([]);
    location.hash = hrefFor(draft);
  };
  return (
    <>
      <h1>Jobs</h1>
      <form class="filters" onSubmit={apply} aria-label="Filter jobs">
        <label>
          queue
          <select value={draft.queue} onChange={(e) => setDraft({ ...draft, queue: (e.target as HTMLSelectElement).value })}>
            <option value="">any</option>
            {(queues.data?.queues ?? []).map((q) => (
              <option key={q.name} value={q.name}>
                {q.name}
              </option>
            ))}
            {draft.queue && !(queues.data?.queues ?? []).some((q) => q.name === draft.queue) ? <option value={draft.queue}>{draft.queue}</option> : null}
          </select>
        </label>
        <label>
          state
          <select value={draft.state} onChange={(e) => setDraft({ ...draft, state: (e.target as HTMLSelectElement).value })}>
            <option value="">any</option>
            {JOB_STATES.map((s: JobState) => (
              <option key={s} value={s}>
                {s.replace('_', ' ')}
              </option>
            ))}
          </select>
        </label>
        <label>
          task
          <input type="text" value={draft.task} placeholder="any" maxLength={128} onInput={(e) => setDraft({ ...draft, task: (e.target as HTMLInputElement).value })} />
        </label>
        <label>
          created after
          <input type="datetime-local" value={draft.after} onInput={(e) => setDraft({ ...draft, after: (e.target as HTMLInputElement).value })} />
        </label>
        <button type="submit">Apply</button>
        <a class="button-link" href="#/jobs" onClick={() => { setDraft({ queue: '', state: '', task: '', after: '' }); setCursors([]); }}>
          Clear
        </a>
      </form>
      <BulkActions key={key} filter={bulkFilter(filter)} onDone={page.reload} />
      <ErrorNote error={page.error} />
      {page.data ? (
        <>
          <JobTable jobs={page.data.jobs} />
          {page.data.jobs.length === 0 ? <p class="note">No jobs match.</p> : null}
          <nav class="pager" aria-label="Pages">
            <button type="button" disabled={cursors.length === 0} onClick={() => setCursors([])}>
              ⇤ Newest
            </button>
            <button type="button" disabled={cursors.length === 0} onClick={() => setCursors(cursors.slice(0, -1))}>
              ← Newer
            </button>
            <button type="button" disabled={page.data.nextCursor === null} onClick={() => page.data?.nextCursor != null && setCursors([...cursors, page.data.nextCursor])}>
              Older →
            </button>
          </nav>
        </>
      ) : (
        <p class="note">Loading…</p>
      )}
    </>
  );
}
