#!/usr/bin/env node
// Bundles the Electron preload into one CommonJS file, dist/main/electron/preload.cjs.
//
// Why a bundle: a sandboxed preload is evaluated as a single CommonJS script whose `require` knows only
// `electron` and a few polyfills, so it cannot import its sibling modules or be an ES module. esbuild (the
// compiler tsx already uses) inlines the contract and the bridge; `electron` stays a require.
//
// Usage: node main/electron/build.mjs   (bin/start.mjs runs it before launching Electron)
import { build } from 'esbuild';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = fileURLToPath(new URL('../../', import.meta.url));
export const preloadOutfile = `${root}dist/main/electron/preload.cjs`;

/** @param {string} [outfile] where to write the bundle (tests write elsewhere) */
export async function buildPreload(outfile = preloadOutfile) {
  await build({
    entryPoints: [`${root}main/electron/preload.ts`],
    outfile,
    bundle: true,
    format: 'cjs',
    platform: 'node',
    // Electron 45 ships Chromium 140.
    target: 'chrome140',
    external: ['electron'],
    logLevel: 'warning',
  });
  return outfile;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  console.log(`built ${await buildPreload()}`);
}
