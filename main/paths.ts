import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

/** The repository (or packaged app) root: main/ sits directly under it, in sources and in dist/ alike. */
export function appRoot(): string {
  const here = fileURLToPath(new URL('.', import.meta.url));
  const up = join(here, '..');
  return existsSync(join(up, 'package.json')) ? up : join(up, '..');
}

/** The embedded default model, or null when this build has none. */
export function defaultModelDir(): string | null {
  const dir = join(appRoot(), 'resources', 'default-model');
  return existsSync(join(dir, 'config.json')) ? dir : null;
}
