/** Absolute path of `dist/` (index.html and assets/), built by `npm run build`. */
export declare const dashboardDir: string;
