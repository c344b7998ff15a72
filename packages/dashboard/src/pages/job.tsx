import { useEffect, useRef, useState } from 'preact/hooks';
import { api, FINAL_STATES, type Job } from '../api.js';
import { ActionButton, ErrorNote, Section, StateBadge } from '../components.js';
import { json, progressOf, time } from '../format.js';
import { adminBlock, usePoll, useSession } from '../hooks.js';
import { streamEvents } from '../sse.js';
import { JobTable } from './jobs.js';

interface LoggedEvent {
  n: number;
  at: string;
  type: string;
  data: string;
}

/**
 * The job's event stream: state changes refresh the job, progress drives the bar. Reads both
 * event shapes: the durable one (`{ id, jobId, type, data: { state } | <progress> }`) and the bare
 * one (`{ state }` / the progress data itself).
 */
function useJobEvents(id: number, isFinal: () => boolean, onState: () => void) {
  const [events, setEvents] = useState<LoggedEvent[]>([]);
  const [progress, setProgress] = useState<unknown>(undefined);
  const [status, setStatus] = useState<'connecting' | 'live' | 'ended' | 'retrying'>('connecting');
  useEffect(() => {
    let n = 0;
    let final = false;
    setEvents([]);
    const stop = streamEvents(`/v1/jobs/${id}/events`, {
      onOpen: () => setStatus('live'),
      onError: () => setStatus('retrying'),
      // The job stream ends after a final state; reconnect (with Last-Event-ID) only if it ended early.
      shouldReconnect: () => {
        const again = !final && !isFinal();
        if (!again) setStatus('ended');
        return again;
      },
      onEvent: (e) => {
        let data: unknown = e.data;
        try {
          data = JSON.parse(e.data);
        } catch {
          // not JSON: shown as sent
        }
        const type = e.event ?? 'message';
        const d = (data && typeof data === 'object' ? data : {}) as { jobId?: unknown; data?: unknown; createdAt?: unknown };
        const durable = 'jobId' in d; // the durable shape wraps the payload in `data` and carries its time
        const inner = durable ? d.data : data;
        const at = durable && typeof d.createdAt === 'string' ? d.createdAt : new Date().toISOString();
        const shown = typeof inner === 'string' ? inner : JSON.stringify(inner);
        setEvents((xs) => [{ n: ++n, at, type, data: shown }, ...xs].slice(0, 200));
        if (type === 'progress') setProgress(inner);
        if (type === 'state' || type === 'cancel_requested') {
          const state = (inner as { state?: unknown } | null)?.state;
          if (FINAL_STATES.includes(state as never)) final = true;
          onState();
        }
      },
    });
    return stop;
  }, [id]);
  return { events, progress, status };
}

function Progress({ data }: { data: unknown }) {
  const p = progressOf(data);
  if (!p) return data === undefined ? null : <pre class="json">{json(data)}</pre>;
  const pct = Math.round((100 * p.current) / p.total);
  return (
    <div class="progress-row">
      <progress max={p.total} value={p.current} aria-label="progress" />
      <span>
        {p.current.toLocaleString()} / {p.total.toLocaleString()} ({pct} %)
      </span>
    </div>
  );
}

export function JobPage({ id }: { id: number }) {
  const session = useSession();
  const blocked = adminBlock(session);
  const job = usePoll((signal) => api<{ job: Job }>(`/v1/jobs/${id}`, { signal }), 5000, [id]);
  const steps = usePoll((signal) => api<{ steps: { name: string; result: unknown; attempt: number; createdAt: string }[] }>(`/v1/jobs/${id}/steps`, { signal }), 5000, [id]);
  const children = usePoll((signal) => api<{ jobs: Job[]; nextCursor: number | null }>(`/v1/jobs?parent=${id}&limit=100`, { signal }), 5000, [id]);
  // Read by the stream's reconnect decision, which outlives this render: a ref, not a closure.
  const knownFinal = useRef(false);
  knownFinal.current = FINAL_STATES.includes(job.data?.job.state as never);
  const live = useJobEvents(id, () => knownFinal.current, () => {
    job.reload();
    steps.reload();
    children.reload();
  });
  const j = job.data?.job;
  const act = (verb: 'retry' | 'cancel') => async () => {
    await api(`/v1/jobs/${id}/${verb}`, { method: 'POST' });
    job.reload();
  };
  const progress = live.progress ?? j?.progress;
  return (
    <>
      <p class="crumbs">
        <a href="#/jobs">Jobs</a> / {j ? <a href={`#/jobs?queue=${encodeURIComponent(j.queue)}`}>{j.queue}</a> : null}
      </p>
      <h1>
        Job #{id} {j ? <StateBadge state={j.state} /> : null}
      </h1>
      <ErrorNote error={job.error} />
      {j ? (
        <>
          <div class="job-actions">
            <ActionButton label="Retry" run={act('retry')} blocked={blocked} disabled={!['failed', 'cancelled'].includes(j.state)} testId="retry" />
            <ActionButton label="Cancel" run={act('cancel')} blocked={blocked} disabled={FINAL_STATES.includes(j.state) || j.cancelRequested} danger testId="cancel" />
            {j.cancelRequested && j.state === 'running' ? <span class="note">cancel requested: the worker stops at its next heartbeat</span> : null}
          </div>
          <dl class="facts job-facts">
            <div><dt>queue</dt><dd>{j.queue}</dd></div>
            <div><dt>task</dt><dd data-testid="task">{j.task}</dd></div>
            <div><dt>state</dt><dd data-testid="job-state">{j.state}</dd></div>
            <div><dt>attempt</dt><dd>{j.attempt} of {j.maxAttempts}</dd></div>
            <div><dt>priority</dt><dd>{j.priority}</dd></div>
            <div><dt>created</dt><dd>{time(j.createdAt)}</dd></div>
            <div><dt>run at</dt><dd>{time(j.runAt)}</dd></div>
            <div><dt>finished</dt><dd>{time(j.finishedAt)}</dd></div>
            <div><dt>idempotency key</dt><dd>{j.idempotencyKey ?? '—'}</dd></div>
            <div><dt>parent</dt><dd>{j.parentId ? <a href={`#/jobs/${j.parentId}`}>#{j.parentId}</a> : '—'}</dd></div>
          </dl>
          {progress !== undefined ? (
            <Section title="Progress">
              <Progress data={progress} />
            </Section>
          ) : null}
          <Section title="Payload">
            <pre class="json" data-testid="payload">{json(j.payload)}</pre>
          </Section>
          {j.result !== null && j.result !== undefined ? (
            <Section title="Result">
              <pre class="json">{json(j.result)}</pre>
            </Section>
          ) : null}
          {j.lastError ? (
            <Section title="Last error">
              <p class="error-text">
                {j.lastError.name ? `${j.lastError.name}: ` : ''}
                {j.lastError.message}
              </p>
              {j.lastError.stack ? <pre class="json">{j.lastError.stack}</pre> : null}
            </Section>
          ) : null}
          <Section title="Steps">
            {steps.data && steps.data.steps.length > 0 ? (
              <div class="table-wrap">
                <table>
                  <thead><tr><th scope="col">step</th><th scope="col">attempt</th><th scope="col">recorded</th><th scope="col">result</th></tr></thead>
                  <tbody>
                    {steps.data.steps.map((s) => (
                      <tr key={s.name}><td>{s.name}</td><td>{s.attempt}</td><td>{time(s.createdAt)}</td><td><code>{json(s.result)}</code></td></tr>
                    ))}
                  </tbody>
                </table>
              </div>
            ) : (
              <p class="note">No checkpointed steps.</p>
            )}
          </Section>
          <Section title="Children">
            {children.data && children.data.jobs.length > 0 ? <JobTable jobs={children.data.jobs} /> : <p class="note">No child jobs.</p>}
          </Section>
        </>
      ) : null}
      <Section title="Live events" actions={<span class={`badge stream-${live.status}`} data-testid="stream-status">{live.status}</span>}>
        {live.events.length === 0 ? <p class="note">Waiting for events…</p> : null}
        <ol class="events" aria-live="polite">
          {live.events.map((e) => (
            <li key={e.n}>
              <span class="event-type">{e.type}</span> <time>{time(e.at)}</time> <code>{e.data}</code>
            </li>
          ))}
        </ol>
      </Section>
    </>
  );
}
