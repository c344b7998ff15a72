/**
 * The structured logging seam of every package: the api (routes, dispatcher), the worker runtime
 * and task contexts, and the server all log through this small interface, so the server can plug
 * in its own logger. `createJsonLogger` is a dependency-free default writing one JSON object per
 * line; it writes only when called (nothing happens at import).
 */

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
}

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/** A logger that drops everything (the runtime's default, so tests stay quiet). */
export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };

/**
 * JSON-lines logger: `{"time","level","msg",...base,...fields}` to `write` (default: stdout
 * for debug/info, stderr for warn/error). Messages below `level` (default info) are dropped
 * before anything is serialized.
 */
export function createJsonLogger(opts: { level?: LogLevel; base?: LogFields; write?: (line: string, level: LogLevel) => void } = {}): Logger {
  const min = RANK[opts.level ?? 'info'];
  const write =
    opts.write ?? ((line: string, level: LogLevel) => (level === 'warn' || level === 'error' ? process.stderr : process.stdout).write(`${line}\n`));
  const emit = (level: LogLevel) => (msg: string, fields?: LogFields) => {
    if (RANK[level] < min) return;
    write(safeStringify({ time: new Date().toISOString(), level, msg, ...opts.base, ...fields }), level);
  };
  return { debug: emit('debug'), info: emit('info'), warn: emit('warn'), error: emit('error') };
}

/** A logger that adds `fields` to every line of `log` (e.g. `{ jobId }` for a handler). */
export function childLogger(log: Logger, fields: LogFields): Logger {
  const wrap = (fn: Logger['info']) => (msg: string, extra?: LogFields) => fn(msg, extra ? { ...fields, ...extra } : fields);
  return { debug: wrap(log.debug.bind(log)), info: wrap(log.info.bind(log)), warn: wrap(log.warn.bind(log)), error: wrap(log.error.bind(log)) };
}

/** Errors become `{ name, message, code? }` (JSON.stringify would print `{}`); cycles are cut. */
function safeStringify(obj: LogFields): string {
  const seen = new WeakSet<object>();
  return JSON.stringify(obj, (_k, v: unknown) => {
    if (v instanceof Error) {
      const code = (v as { code?: unknown }).code;
      return code === undefined ? { name: v.name, message: v.message } : { name: v.name, message: v.message, code };
    }
    if (typeof v === 'bigint') return v.toString();
    if (v && typeof v === 'object') {
      if (seen.has(v)) return '[circular]';
      seen.add(v);
    }
    return v;
  });
}
