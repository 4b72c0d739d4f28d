/** The engine's public API: what the CLI, the worker thread, tests and benchmarks import. */
export * from './backend.js';
export * from './tokenizer/index.js';
export * from './model/index.js';
export * from './generate/index.js';
export * from './train/index.js';
export * from './score/index.js';
