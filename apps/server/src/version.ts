import { readFileSync } from 'node:fs';

/** The server package's version (read once, at call time; nothing runs at import). */
export function serverVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}
