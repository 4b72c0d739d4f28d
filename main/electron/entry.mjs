// The file Electron is started on (bin/start.mjs: `electron main/electron/entry.mjs [args]`). Runs the compiled
// main process when a production build exists, else the TypeScript sources through tsx, as bin/inkling.mjs
// does for the CLI. The preload is never loaded from source: it must be bundled first (build.mjs).
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';

const built = fileURLToPath(new URL('../../dist/main/electron/main.js', import.meta.url));
if (existsSync(built)) {
  await import(pathToFileURL(built).href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('./main.ts');
}
