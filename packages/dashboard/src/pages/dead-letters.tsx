import { api, type Job } from '../api.js';
import { ConfirmAction, ErrorNote } from '../components.js';
import { ago, time } from '../format.js';
import { adminBlock, useNow, usePoll, useSession } from '../hooks.js';
import { fallbackPollMs, useLiveReload } from '../live.js';

/** Newest dead letters shown, across queues; redrive sends back up to 1000 per call whatever is shown. */
const SHOWN = 200;

interface QueueRow {
  name: string;
  deadLetterQueue: string | null;
}

/**
 * Dead letters: jobs that ended `failed` in a queue with a dead-letter queue and moved there
 * (`GET /v1/jobs?deadLettered=true`), grouped by the queue they sit in, each group with its
 * Redrive (`POST /v1/queues/:name/redrive`, admin) that sends them back to the queues they failed in.
 */
export function DeadLettersPage() {
  const now = useNow(5000);
  const session = useSession();
  const blocked = adminBlock(session);
  const res = usePoll(
    async (signal) => {
      const [jobs, queues] = await Promise.all([
        api<{ jobs: Job[] }>(`/v1/jobs?deadLettered=true&state=failed&limit=${SHOWN}`, { signal }),
        api<{ queues: QueueRow[] }>('/v1/queues', { signal }),
      ]);
      return { jobs: jobs.jobs, queues: queues.queues };
    },
    fallbackPollMs(),
    [],
  );
  useLiveReload(res.reload);
  const jobs = res.data?.jobs ?? [];
  // Every configured dead-letter queue, and any queue holding dead letters (its policy may have changed since).
  const groups = new Map<string, Job[]>();
  for (const q of res.data?.queues ?? []) if (q.deadLetterQueue) groups.set(q.deadLetterQueue, []);
  for (const j of jobs) groups.set(j.queue, [...(groups.get(j.queue) ?? []), j]);
  const sources = (dlq: string) => (res.data?.queues ?? []).filter((q) => q.deadLetterQueue === dlq).map((q) => q.name);
  return (
    <>
      <h1>Dead letters</h1>
      <ErrorNote error={res.error} />
      <p class="hint">
        A queue with a dead-letter queue (PUT /v1/queues/:name with deadLetterQueue) moves a job that ends failed there, with its error. Redrive sends the dead
        letters of a dead-letter queue back to the queues they failed in, queued with their attempts counted afresh (up to 1000 per press).
      </p>
      {res.data && groups.size === 0 ? <p class="note">No dead-letter queues: no queue has a deadLetterQueue set, and no job is dead-lettered.</p> : null}
      {res.data && jobs.length === SHOWN ? <p class="note">Showing the newest {SHOWN} dead letters.</p> : null}
      {[...groups].sort(([a], [b]) => a.localeCompare(b)).map(([dlq, list]) => (
        <section key={dlq} class="panel dead-letters" data-dlq={dlq} aria-labelledby={`dlq-${dlq}`}>
          <header class="panel-head">
            <h2 id={`dlq-${dlq}`}>
              <a href={`#/jobs?queue=${encodeURIComponent(dlq)}&state=failed`}>{dlq}</a>
              <span class="badge" data-testid="dead-count">
                {list.length === SHOWN ? `${SHOWN}+` : list.length} dead
              </span>
            </h2>
            <ConfirmAction
              label="Redrive"
              describe={`Send the dead letters of ${dlq} back to the queues they failed in (up to 1000)?`}
              blocked={blocked}
              testId="redrive"
              run={async () => {
                const out = await api<{ count: number }>(`/v1/queues/${encodeURIComponent(dlq)}/redrive`, { method: 'POST', body: {} });
                res.reload();
                return `Sent ${out.count.toLocaleString()} ${out.count === 1 ? 'job' : 'jobs'} back.`;
              }}
            />
          </header>
          {sources(dlq).length > 0 ? <p class="hint">Dead-letter queue of {sources(dlq).join(', ')}.</p> : null}
          {list.length === 0 ? (
            <p class="note">Empty.</p>
          ) : (
            <div class="table-wrap">
              <table>
                <thead>
                  <tr>
                    <th scope="col">id</th>
                    <th scope="col">failed in</th>
                    <th scope="col">task</th>
                    <th scope="col">attempts</th>
                    <th scope="col">error</th>
                    <th scope="col">failed</th>
                  </tr>
                </thead>
                <tbody>
                  {list.map((j) => (
                    <tr key={j.id} data-job={j.id}>
                      <td>
                        <a href={`#/jobs/${j.id}`}>#{j.id}</a>
                      </td>
                      <td>{j.deadLetterFrom ?? '—'}</td>
                      <td>{j.task}</td>
                      <td>
                        {j.attempt}/{j.maxAttempts}
                      </td>
                      <td class="error-text">{j.lastError?.message ?? '—'}</td>
                      <td title={time(j.finishedAt)}>{ago(j.finishedAt, now)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
        </section>
      ))}
    </>
  );
}
