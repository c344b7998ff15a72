import type { ComponentChildren } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
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

/**
 * An admin action over many jobs, in two steps: the button opens an inline confirmation that says
 * what will happen (`describe`), focused on its Confirm button (Escape or Back closes it); the
 * outcome (`run` answers the message, such as "Cancelled 12 jobs") stays shown after.
 */
export function ConfirmAction(props: { label: string; describe: string; run: () => Promise<string>; blocked?: string | undefined; danger?: boolean; testId: string }) {
  const [open, setOpen] = useState(false);
  const [busy, setBusy] = useState(false);
  const [outcome, setOutcome] = useState<{ text: string; error: boolean } | undefined>(undefined);
  const confirmRef = useRef<HTMLButtonElement>(null);
  const openerRef = useRef<HTMLButtonElement>(null);
  const wasOpen = useRef(false);
  useEffect(() => {
    // Focus follows the dialog: onto Confirm when it opens, back to the (re-enabled) opener after.
    if (open) confirmRef.current?.focus();
    else if (wasOpen.current) openerRef.current?.focus();
    wasOpen.current = open;
  }, [open]);
  const close = () => setOpen(false);
  return (
    <span class="action confirm-action">
      <button ref={openerRef} type="button" class={props.danger ? 'danger' : undefined} disabled={Boolean(props.blocked) || open || busy} title={props.blocked} data-testid={props.testId} onClick={() => { setOutcome(undefined); setOpen(true); }}>
        {props.label}
      </button>
      {props.blocked ? <span class="reason">{props.blocked}</span> : null}
      {open ? (
        <span class="confirm" role="group" aria-label={`Confirm: ${props.label}`} onKeyDown={(e) => e.key === 'Escape' && close()}>
          <span>{props.describe}</span>
          <button
            ref={confirmRef}
            type="button"
            class={props.danger ? 'danger' : undefined}
            disabled={busy}
            data-testid={`${props.testId}-confirm`}
            onClick={async () => {
              setBusy(true);
              try {
                setOutcome({ text: await props.run(), error: false });
              } catch (err) {
                setOutcome({ text: err instanceof Error ? err.message : String(err), error: true });
              } finally {
                setBusy(false);
                close();
              }
            }}
          >
            Confirm
          </button>
          <button type="button" onClick={close}>
            Back
          </button>
        </span>
      ) : null}
      {outcome ? (
        <span class={outcome.error ? 'reason error' : 'reason'} role={outcome.error ? 'alert' : 'status'} data-testid={`${props.testId}-outcome`}>
          {outcome.text}
        </span>
      ) : null}
    </span>
  );
}
