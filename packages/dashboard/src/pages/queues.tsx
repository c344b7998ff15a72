import { api, type QueueOverview, type Throughput } from '../api.js';
import { ActionButton, ErrorNote } from '../components.js';
import { duration, rate } from '../format.js';
import { adminBlock, usePoll, useSession } from '../hooks.js';
import { fallbackPollMs, useLiveReload } from '../live.js';
import { Sparkline } from '../sparkline.js';

const COUNTED: (keyof QueueOverview['counts'])[] = ['queued', 'running', 'retry_waiting', 'succeeded', 'failed', 'cancelled'];

function sum(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0);
}

/** Failure rate per bucket: failed / (succeeded + failed), 0 where nothing finished. */
function failureRate(s: { succeeded: number[]; failed: number[] }): number[] {
  return s.failed.map((f, i) => {
    const n = f + (s.succeeded[i] ?? 0);
    return n === 0 ? 0 : (100 * f) / n;
  });
}

function QueueCard(props: { q: QueueOverview; tp: Throughput | undefined; reload: () => void }) {
  const { q, tp } = props;
  const session = useSession();
  const blocked = adminBlock(session);
  const buckets = tp ? Math.round(3600 / tp.bucketSeconds) : 0;
  const series = tp?.queues[q.name] ?? (tp ? { succeeded: new Array<number>(buckets).fill(0), failed: new Array<number>(buckets).fill(0) } : undefined);
  const done = series ? sum(series.succeeded) + sum(series.failed) : 0;
  const failPct = series && done > 0 ? (100 * sum(series.failed)) / done : 0;
  const toggle = async () => {
    await api(`/v1/queues/${encodeURIComponent(q.name)}/${q.paused ? 'resume' : 'pause'}`, { method: 'POST' });
    props.reload();
  };
  return (
    <article class="queue" data-queue={q.name} aria-labelledby={`q-${q.name}`}>
      <header class="queue-head">
        <h3 id={`q-${q.name}`}>
          <a href={`#/jobs?queue=${encodeURIComponent(q.name)}`}>{q.name}</a>
        </h3>
        {q.paused ? <span class="badge paused" data-testid="paused">paused</span> : <span class="badge live">active</span>}
      </header>
      <dl class="counts">
        {COUNTED.map((s) => (
          <div key={s} class={`count state-${s}`}>
            <dt>
              <a href={`#/jobs?queue=${encodeURIComponent(q.name)}&state=${s}`}>{s.replace('_', ' ')}</a>
            </dt>
            <dd data-testid={`count-${s}`}>{q.counts[s].toLocaleString()}</dd>
          </div>
        ))}
      </dl>
      <dl class="facts">
        <div>
          <dt>oldest waiting</dt>
          <dd>{q.oldestWaitingSeconds > 0 ? duration(q.oldestWaitingSeconds) : '—'}</dd>
        </div>
        <div>
          <dt>concurrency limit</dt>
          <dd>{q.concurrencyLimit ?? 'unlimited'}</dd>
        </div>
        <div>
          <dt>rate limit</dt>
          <dd data-testid="rate-limit">{rate(q.rateLimit ?? null, q.rateIntervalMs ?? 1000)}</dd>
        </div>
      </dl>
      {series && tp ? (
        <div class="sparks">
          <Sparkline values={series.succeeded.map((s, i) => s + (series.failed[i] ?? 0))} bucketSeconds={tp.bucketSeconds} until={tp.until} color="#2563eb" label={`${done.toLocaleString()} finished / h`} />
          <Sparkline values={failureRate(series)} bucketSeconds={tp.bucketSeconds} until={tp.until} color="#dc2626" label={`${failPct.toFixed(1)} % failed`} />
        </div>
      ) : null}
      <footer class="queue-actions">
        <ActionButton label={q.paused ? 'Resume' : 'Pause'} run={toggle} blocked={blocked} testId="pause-toggle" />
      </footer>
    </article>
  );
}

export function QueuesPage() {
  const overview = usePoll((signal) => api<{ queues: QueueOverview[]; tasksWithoutWorkers?: string[] }>('/v1/stats/queues', { signal }), fallbackPollMs(), []);
  // Live from the all-queue event stream; once more 2.5 s after the last event, past the 2 s the
  // server reuses an overview for (so the last change is never left showing a cached answer).
  useLiveReload(overview.reload, { settleMs: 2500 });
  const tp = usePoll((signal) => api<Throughput>('/v1/stats/throughput', { signal }), 10_000, []);
  const queues = overview.data?.queues ?? [];
  const stuck = queues.filter((q) => !q.paused && !q.workersListening && q.counts.queued + q.counts.retry_waiting > 0);
  return (
    <>
      <h1>Queues</h1>
      {stuck.map((q) => (
        <p key={q.name} class="banner" role="status" data-testid="unattended">
          Queue <strong>{q.name}</strong> has {(q.counts.queued + q.counts.retry_waiting).toLocaleString()} waiting jobs and no worker has asked this api process
          for work on it in the last minute: start a worker that listens on it.
        </p>
      ))}
      {(overview.data?.tasksWithoutWorkers ?? []).length > 0 ? (
        <p class="banner" role="status" data-testid="unknown-tasks">
          Jobs of {overview.data!.tasksWithoutWorkers!.length === 1 ? 'task' : 'tasks'} <strong>{overview.data!.tasksWithoutWorkers!.join(', ')}</strong> are waiting
          and no worker that knows {overview.data!.tasksWithoutWorkers!.length === 1 ? 'it' : 'them'} has asked for work in the last minute: they wait (they are
          not failed) until one does.
        </p>
      ) : null}
      <ErrorNote error={overview.error} />
      {overview.data && queues.length === 0 ? <p class="note">No queues yet: enqueue a job (POST /v1/queues/:queue/jobs) and it appears here.</p> : null}
      <div class="queues">
        {queues.map((q) => (
          <QueueCard key={q.name} q={q} tp={tp.data} reload={overview.reload} />
        ))}
      </div>
      <p class="hint">Throughput and failure rate: jobs that finished per minute over the last hour (a failure is a job that ended failed, not a retry).</p>
    </>
  );
}
