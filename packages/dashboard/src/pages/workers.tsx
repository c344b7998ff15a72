import { api, type WorkerPresence } from '../api.js';
import { ErrorNote } from '../components.js';
import { ago, time } from '../format.js';
import { useNow, usePoll } from '../hooks.js';

export function WorkersPage() {
  const now = useNow(2000);
  const res = usePoll((signal) => api<{ presenceSeconds: number; workers: WorkerPresence[] }>('/v1/workers', { signal }), 3000, []);
  const workers = res.data?.workers ?? [];
  return (
    <>
      <h1>Workers</h1>
      <ErrorNote error={res.error} />
      <p class="hint">
        Executors that asked this api process for work in the last {res.data?.presenceSeconds ?? 60} s, by tier, credential, queues and tasks (workers sharing
        all four appear as one row). With several api pods each pod sees the workers that long-poll it.
      </p>
      {res.data && workers.length === 0 ? <p class="note">No executor has asked for work recently: jobs will wait until a worker (or a process in role all) runs.</p> : null}
      {workers.length > 0 ? (
        <div class="table-wrap">
          <table>
            <thead>
              <tr><th scope="col">tier</th><th scope="col">credential</th><th scope="col">queues</th><th scope="col">tasks</th><th scope="col">last seen</th><th scope="col">long-poll open</th></tr>
            </thead>
            <tbody>
              {workers.map((w) => (
                <tr key={`${w.tier}|${w.subject}|${String(w.queues)}`}>
                  <td>{w.tier}</td>
                  <td>{w.subject}</td>
                  <td>{w.queues === '*' ? 'all queues (*)' : w.queues.join(', ')}</td>
                  <td>{w.tasks === undefined || w.tasks === '*' ? 'any task (*)' : w.tasks.join(', ')}</td>
                  <td title={time(w.lastSeenAt)}>{ago(w.lastSeenAt, now)}</td>
                  <td>{w.waiting ? 'yes' : 'no'}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
    </>
  );
}
