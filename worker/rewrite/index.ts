/** Translation and rewriting as generation from few-shot prompt templates. */
export * from './templates.js';
