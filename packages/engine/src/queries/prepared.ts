/**
 * Options for `exec.unsafe(text, params, PREPARED)`. postgres.js sends `unsafe()` statements
 * unprepared unless asked: Parse + Describe, a wait for the parameter types, then Bind + Execute
 * — two round trips, and a parse and a plan, on every call. Prepared, each pooled connection
 * parses a statement once and later calls are one Bind/Execute round trip. DATABASE_PREPARE=false
 * (PgBouncer in transaction mode) still wins: postgres.js prepares only when the pool allows it.
 *
 * Not for the claim statements: after five executions PostgreSQL may switch a prepared statement
 * to its generic plan, and the claims' generic plans are the ones that scan past the backlog
 * (`plan_cache_mode = force_generic_plan` made a claim of 16 cost 260 µs of server CPU per job
 * instead of 80, measure-hot-path.mjs). The fenced writes probe by primary key either way.
 */
export const PREPARED = { prepare: true } as const;
