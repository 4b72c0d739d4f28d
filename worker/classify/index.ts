/** Text classification: zero-shot (labels scored as continuations, calibrated) and a trained head. */
export * from './zero-shot.js';
export * from './data.js';
export * from './trained.js';
export * from './files.js';
