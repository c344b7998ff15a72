import type { ComponentChildren } from 'preact';
import { useState } from 'preact/hooks';
import { ApiError, type JobState } from './api.js';

export function StateBadge({ state }: { state: JobState }) {
  return <span class={`badge state-${state}`}>{state.replace('_', ' ')}</span>;
}

export function ErrorNote({ error }: { error: Error | undefined }) {
  if (!error) return null;
  const code = error instanceof ApiError ? ` (${error.code})` : '';
  return (
    <p class="note error" role="alert">
      {error.message}
      {code}
    </p>
  );
}

/**
 * A button for an admin action: disabled with the reason shown (not only in a tooltip) when the
 * key lacks the scope; reports the API's answer inline.
 */
export function ActionButton(props: { label: string; run: () => Promise<unknown>; blocked?: string | undefined; disabled?: boolean; danger?: boolean; testId?: string }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | undefined>(undefined);
  const disabled = Boolean(props.blocked) || props.disabled || busy;
  return (
    <span class="action">
      <button
        type="button"
        class={props.danger ? 'danger' : undefined}
        disabled={disabled}
        title={props.blocked}
        data-testid={props.testId}
        onClick={async () => {
          setBusy(true);
          setError(undefined);
          try {
            await props.run();
          } catch (err) {
            setError(err instanceof Error ? err.message : String(err));
          } finally {
            setBusy(false);
          }
        }}
      >
        {props.label}
      </button>
      {props.blocked ? <span class="reason">{props.blocked}</span> : null}
      {error ? (
        <span class="reason error" role="alert">
          {error}
        </span>
      ) : null}
    </span>
  );
}

export function Section(props: { title: string; children: ComponentChildren; actions?: ComponentChildren }) {
  return (
    <section class="panel">
      <header class="panel-head">
        <h2>{props.title}</h2>
        {props.actions}
      </header>
      {props.children}
    </section>
  );
}
