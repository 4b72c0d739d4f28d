// Starts a worker thread from TypeScript source (development and tests): registers tsx in this thread,
// then imports the real entry. A compiled build starts the thread's .js file directly and never loads this file.
// Both hooks: the ESM one for our sources, the CommonJS one for training, which `require`s tfjs-core's
// gradient registrations (an ES-module build with extension-less imports only tsx resolves; see
// worker/train/gradients.ts).
import { workerData } from 'node:worker_threads';
import { register } from 'tsx/esm/api';
import { register as registerCjs } from 'tsx/cjs/api';

register();
registerCjs();
await import(workerData.entry);
