/** Measuring models on text: loss, perplexity and bits per byte. */
export { evaluateText, scoringWindows, type TextEvaluation, type TextEvaluationOptions } from './perplexity.js';
