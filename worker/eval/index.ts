/** Measuring models on text: loss, perplexity and bits per byte. */
export { evaluateText, scoringWindows, type TextEvaluation, type TextEvaluationOptions } from './perplexity.js';
export { evaluateTextStepwise, STEPWISE_TOKENS_PER_CALL, type StepwiseEvaluationOptions } from './stepwise.js';
