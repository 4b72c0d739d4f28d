// `node --import <this file>`: makes a run fail loudly the moment anything imports TypeScript or the tsx
// loader, and (when INKLING_LOAD_LOG names a file) writes every module URL it resolves there, one a line.
// Plain JavaScript on purpose: it must work without any loader. Worker threads run it too (they inherit
// the --import), so the engine thread is covered as well.
import { register } from 'node:module';

register('./no-typescript-hooks.mjs', import.meta.url, { data: { log: process.env.INKLING_LOAD_LOG || null } });
