// Starts the engine worker from TypeScript source (development and tests): registers tsx in this thread,
// then imports the real entry. A compiled build starts worker/thread.js directly and never loads this file.
import { workerData } from 'node:worker_threads';
import { register } from 'tsx/esm/api';

register();
await import(workerData.entry);
