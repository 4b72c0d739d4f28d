/**
 * Where a worker thread of the engine starts: its compiled `.js` file in a build, else (development, tests)
 * the tsx bootstrap, which registers the TypeScript loader in the new thread and then imports the `.ts`
 * source (`workerData.entry`). Worker threads do not inherit the parent's loader hooks, hence the bootstrap.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export interface ThreadEntry {
  url: URL;
  /** The source to import, for the bootstrap; absent when `url` is the compiled file itself. */
  entry?: string;
}

/** `compiled` is the thread's `.js` URL; its `.ts` sibling is used when no build is there. */
export function threadEntry(compiled: URL): ThreadEntry {
  if (existsSync(fileURLToPath(compiled))) return { url: compiled };
  return {
    url: new URL('./tsx-bootstrap.mjs', import.meta.url),
    entry: compiled.href.replace(/\.js$/, '.ts'),
  };
}
