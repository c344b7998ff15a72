// Where the built dashboard lives, for the server that serves it (apps/server). Plain ESM beside
// package.json, not part of the browser bundle; computing a path does no I/O.
import { fileURLToPath } from 'node:url';

/** Absolute path of `dist/` (index.html and assets/), built by `npm run build`. */
export const dashboardDir = fileURLToPath(new URL('./dist/', import.meta.url));
