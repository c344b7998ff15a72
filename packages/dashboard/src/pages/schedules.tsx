import { api, type Schedule } from '../api.js';
import { ActionButton, ErrorNote } from '../components.js';
import { fromNow, time } from '../format.js';
import { adminBlock, useNow, usePoll, useSession } from '../hooks.js';

/**
 * Schedules (`GET /v1/schedules`) with their next run times. A schedule fires about once a minute
 * at most often, so a 5 s poll of a few rows is enough (no event stream carries schedule changes).
 * Enable/Disable are `POST /v1/schedules/:name/{resume,pause}`; the API has no "run now".
 */
export function SchedulesPage() {
  const now = useNow(5000);
  const session = useSession();
  const blocked = adminBlock(session);
  const res = usePoll((signal) => api<{ schedules: Schedule[] }>('/v1/schedules', { signal }), 5000, []);
  const schedules = res.data?.schedules ?? [];
  const toggle = (s: Schedule) => async () => {
    await api(`/v1/schedules/${encodeURIComponent(s.name)}/${s.enabled ? 'pause' : 'resume'}`, { method: 'POST' });
    res.reload();
  };
  return (
    <>
      <h1>Schedules</h1>
      <ErrorNote error={res.error} />
      <p class="hint">
        Each schedule enqueues its task in its queue at every tick of its cron expression (read in its time zone). Next run is the oldest tick not yet fired; a
        disabled schedule resumes from the time it is enabled again (missed ticks are not caught up).
      </p>
      {res.data && schedules.length === 0 ? <p class="note">No schedules: create one with POST /v1/schedules or `pgdispatch schedules create`.</p> : null}
      {schedules.length > 0 ? (
        <div class="table-wrap">
          <table class="schedules">
            <thead>
              <tr>
                <th scope="col">name</th>
                <th scope="col">cron</th>
                <th scope="col">queue</th>
                <th scope="col">task</th>
                <th scope="col">next run</th>
                <th scope="col">last run</th>
                <th scope="col">catch-up</th>
                <th scope="col">state</th>
              </tr>
            </thead>
            <tbody>
              {schedules.map((s) => (
                <tr key={s.name} data-schedule={s.name}>
                  <th scope="row">{s.name}</th>
                  <td>
                    <code>{s.cron}</code> {s.timeZone === 'UTC' ? null : <span class="hint">({s.timeZone})</span>}
                  </td>
                  <td>
                    <a href={`#/jobs?queue=${encodeURIComponent(s.queue)}`}>{s.queue}</a>
                  </td>
                  <td>{s.task}</td>
                  <td data-testid="next-run">
                    {s.enabled ? (
                      <>
                        <time dateTime={s.nextRunAt}>{time(s.nextRunAt)}</time> <span class="hint">({fromNow(s.nextRunAt, now)})</span>
                      </>
                    ) : (
                      <span class="note">— (disabled)</span>
                    )}
                  </td>
                  <td>
                    {s.lastTickAt ? <time dateTime={s.lastTickAt}>{time(s.lastTickAt)}</time> : '—'}
                    {s.lastJobId !== null ? (
                      <>
                        {' '}
                        <a href={`#/jobs/${s.lastJobId}`}>#{s.lastJobId}</a>
                      </>
                    ) : null}
                  </td>
                  <td>{s.catchUp}</td>
                  <td>
                    <span class={`badge ${s.enabled ? 'live' : 'paused'}`}>{s.enabled ? 'enabled' : 'disabled'}</span>{' '}
                    <ActionButton label={s.enabled ? 'Disable' : 'Enable'} run={toggle(s)} blocked={blocked} testId="schedule-toggle" />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
    </>
  );
}
