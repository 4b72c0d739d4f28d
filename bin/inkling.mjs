#!/usr/bin/env node
// The `inkling` command. In a development checkout it runs the TypeScript sources through tsx (so a stale
// build never shadows an edit); where only the compiled build exists (a package), it runs that.
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';

const sources = fileURLToPath(new URL('../main/cli/index.ts', import.meta.url));
if (existsSync(sources)) {
  const { register } = await import('tsx/esm/api');
  register();
  await import(pathToFileURL(sources).href);
} else {
  await import(new URL('../dist/main/cli/index.js', import.meta.url).href);
}
