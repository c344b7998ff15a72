import { defineConfig } from 'vite';

// A static bundle for the api to serve at `/`. No inline script or style may be emitted (the
// page's Content-Security-Policy has no 'unsafe-inline'): no modulepreload polyfill (it is an
// inline script in some setups), CSS as a file, assets never inlined as data: URLs except images.
export default defineConfig({
  root: 'src',
  base: '/',
  publicDir: false,
  esbuild: { jsx: 'automatic', jsxImportSource: 'preact' },
  build: {
    outDir: '../dist',
    emptyOutDir: true,
    target: 'es2022',
    modulePreload: { polyfill: false },
    cssCodeSplit: false,
    assetsInlineLimit: 0,
    sourcemap: false,
    reportCompressedSize: false,
  },
  logLevel: 'warn',
});
