import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { api, ApiError, storedKey, storeKey, type Whoami } from './api.js';
import { SessionContext, useRoute } from './hooks.js';
import { DeadLettersPage } from './pages/dead-letters.js';
import { JobPage } from './pages/job.js';
import { JobsPage } from './pages/jobs.js';
import { QueuesPage } from './pages/queues.js';
import { SchedulesPage } from './pages/schedules.js';
import { WorkersPage } from './pages/workers.js';
import './styles.css';

function KeyForm(props: { onKey: (key: string) => void; error: string | undefined }) {
  const [key, setKey] = useState('');
  return (
    <main id="main" class="login">
      <h1>pgdispatch</h1>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          if (key.trim()) props.onKey(key.trim());
        }}
      >
        <label for="api-key">API key</label>
        <input id="api-key" name="api-key" type="password" autocomplete="off" required value={key} onInput={(e) => setKey((e.target as HTMLInputElement).value)} />
        <button type="submit">Sign in</button>
        {props.error ? (
          <p class="note error" role="alert">
            {props.error}
          </p>
        ) : null}
        <p class="hint">A key with the read scope shows everything; pausing, retrying and cancelling need the admin scope. The key is kept in this tab only (session storage) and sent in the Authorization header.</p>
      </form>
    </main>
  );
}

function Nav(props: { path: string; session: Whoami; onSignOut: () => void }) {
  const at = (p: string) => (p === '/' ? props.path === '/' : props.path.startsWith(p)) ? 'page' : undefined;
  return (
    <header class="top">
      <a class="skip" href="#main" onClick={(e) => { e.preventDefault(); document.getElementById('main')?.focus(); }}>
        Skip to content
      </a>
      <span class="brand">pgdispatch</span>
      <nav aria-label="Main">
        <a href="#/" aria-current={at('/')}>Queues</a>
        <a href="#/jobs" aria-current={at('/jobs')}>Jobs</a>
        <a href="#/workers" aria-current={at('/workers')}>Workers</a>
        <a href="#/schedules" aria-current={at('/schedules')}>Schedules</a>
        <a href="#/dead-letters" aria-current={at('/dead-letters')}>Dead letters</a>
      </nav>
      <span class="who" data-testid="scopes">
        {props.session.open ? 'open API (no keys configured)' : `key: ${props.session.scopes.join(', ')}`}
      </span>
      {props.session.open ? null : (
        <button type="button" class="link" onClick={props.onSignOut}>
          Sign out
        </button>
      )}
    </header>
  );
}

function Page({ path, query }: { path: string; query: URLSearchParams }) {
  const job = /^\/jobs\/(\d+)$/.exec(path);
  if (job) return <JobPage key={job[1]} id={Number(job[1])} />;
  if (path === '/jobs') return <JobsPage key={query.toString()} query={query} />;
  if (path === '/workers') return <WorkersPage />;
  if (path === '/schedules') return <SchedulesPage />;
  if (path === '/dead-letters') return <DeadLettersPage />;
  if (path === '/') return <QueuesPage />;
  return <p class="note">No such page. <a href="#/">Queues</a></p>;
}

function App() {
  const route = useRoute();
  const [session, setSession] = useState<Whoami | null>(null);
  const [needKey, setNeedKey] = useState(false);
  const [error, setError] = useState<string | undefined>(undefined);

  const check = async () => {
    try {
      const who = await api<Whoami>('/v1/whoami');
      if (who.authenticated) {
        setSession(who);
        setNeedKey(false);
        setError(undefined);
      } else {
        setSession(null);
        setNeedKey(true);
      }
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) {
        if (storedKey()) setError('That key was refused.');
        storeKey(null);
        setSession(null);
        setNeedKey(true);
      } else setError(err instanceof Error ? err.message : String(err));
    }
  };
  useEffect(() => void check(), []);

  if (needKey) return <KeyForm error={error} onKey={(k) => { storeKey(k); void check(); }} />;
  if (!session) return <main id="main" class="login"><p class="note">{error ?? 'Connecting…'}</p></main>;
  return (
    <SessionContext.Provider value={session}>
      <Nav path={route.path} session={session} onSignOut={() => { storeKey(null); setSession(null); setError(undefined); setNeedKey(true); }} />
      <main id="main" tabIndex={-1}>
        <Page path={route.path} query={route.query} />
      </main>
    </SessionContext.Provider>
  );
}

render(<App />, document.getElementById('app')!);
