/**
 * Builds the renderer into dist/renderer. `base: './'` makes every asset URL relative, so the same build
 * loads from file:// in Electron and from http:// in browser mode.
 */
import { fileURLToPath } from 'node:url';
import { defineConfig, type Plugin } from 'vite';
import { svelte } from '@sveltejs/vite-plugin-svelte';

const here = (relative: string) => fileURLToPath(new URL(relative, import.meta.url));

/**
 * The dev server injects styles as inline <style> tags and talks to its own WebSocket, which the strict
 * policy in index.html forbids; in dev only, the meta tag is dropped. Built pages keep it.
 */
function relaxCspInDev(): Plugin {
  return {
    name: 'inkling-relax-csp-in-dev',
    apply: 'serve',
    transformIndexHtml: (html) => html.replace(/<meta http-equiv="Content-Security-Policy"[^>]*>\s*/, ''),
  };
}

export default defineConfig({
  root: here('.'),
  base: './',
  plugins: [svelte(), relaxCspInDev()],
  build: {
    outDir: here('../dist/renderer'),
    emptyOutDir: true,
    target: 'es2022',
    // Everything stays a file: no data: URLs, no inline anything.
    assetsInlineLimit: 0,
    // One entry chunk: the preload polyfill would only add code.
    modulePreload: { polyfill: false },
    sourcemap: true,
  },
  server: {
    // The renderer imports types from main/ipc; allow the repository root.
    fs: { allow: [here('..')] },
  },
});
