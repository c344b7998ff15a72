import { parseConfig, parseTokenSecret, type Config } from '@pgdispatch/core/config';

/** The only place pgdispatch reads process.env: parsed once, frozen, passed down. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Readonly<Config> {
  return parseConfig(env);
}

/** WORKER_TOKEN_SECRET only, for `pgdispatch token`. */
export function loadTokenSecret(env: Record<string, string | undefined> = process.env): string {
  return parseTokenSecret(env);
}

/** Where the CLI's client commands send requests, and with which key. */
export function cliDefaults(env: Record<string, string | undefined> = process.env): { url: string; apiKey: string | undefined } {
  return { url: env.PGDISPATCH_URL ?? `http://localhost:${env.PORT ?? '8080'}`, apiKey: env.PGDISPATCH_API_KEY || undefined };
}
