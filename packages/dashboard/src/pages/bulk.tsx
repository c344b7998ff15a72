import { api, type BulkFilter, type JobState } from '../api.js';
import { ConfirmAction } from '../components.js';
import { adminBlock, useSession } from '../hooks.js';

/** The API's default and the most jobs one bulk call touches. */
const BULK_LIMIT = 1000;

function describe(f: BulkFilter): string {
  const parts = [f.queue && `queue ${f.queue}`, f.state && `state ${f.state.replace('_', ' ')}`, f.task && `task ${f.task}`, f.createdAfter && `created after ${new Date(f.createdAfter).toLocaleString()}`].filter(Boolean);
  return parts.join(', ');
}

const RETRYABLE: JobState[] = ['failed', 'cancelled'];
const CANCELLABLE: JobState[] = ['queued', 'retry_waiting', 'running'];

/**
 * Retry or cancel every job that matches the list's filter (`POST /v1/jobs/bulk/{retry,cancel}`,
 * admin), after a confirmation that repeats the filter; says how many jobs it changed. The API
 * touches at most BULK_LIMIT per call, oldest first; pressing again continues.
 */
export function BulkActions(props: { filter: BulkFilter; onDone: () => void }) {
  const session = useSession();
  const blocked = adminBlock(session);
  const f = props.filter;
  const what = describe(f);
  // The API refuses a bulk call without a filter (400): "every job there is" is never one click away.
  const unfiltered = what === '' ? 'set a filter first (queue, state, task or time)' : undefined;
  const run = (op: 'retry' | 'cancel') => async () => {
    const out = await api<{ count: number }>(`/v1/jobs/bulk/${op}`, { method: 'POST', body: f });
    props.onDone();
    const n = `${out.count.toLocaleString()} ${out.count === 1 ? 'job' : 'jobs'}`;
    const more = out.count === BULK_LIMIT ? ` (at most ${BULK_LIMIT} per press: press again for more)` : '';
    return op === 'retry' ? `Retried ${n}${more}.` : `Cancelled ${n} (running ones are asked to stop)${more}.`;
  };
  return (
    <div class="bulk" role="group" aria-label="Act on every matching job">
      <ConfirmAction
        label="Retry matching…"
        testId="bulk-retry"
        blocked={blocked ?? unfiltered ?? (f.state && !RETRYABLE.includes(f.state) ? `only failed or cancelled jobs can be retried` : undefined)}
        describe={`Retry every failed or cancelled job matching ${what}?`}
        run={run('retry')}
      />
      <ConfirmAction
        label="Cancel matching…"
        testId="bulk-cancel"
        danger
        blocked={blocked ?? unfiltered ?? (f.state && !CANCELLABLE.includes(f.state) ? `${f.state} jobs are finished` : undefined)}
        describe={`Cancel every waiting or running job matching ${what}?`}
        run={run('cancel')}
      />
    </div>
  );
}
