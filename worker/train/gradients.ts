/**
 * Registers TensorFlow.js's op gradients, which training needs and tfjs-core's Node bundle leaves out (the
 * `@tensorflow/tfjs` umbrella registers them; we use tfjs-core alone).
 *
 * They exist only in tfjs-core's ES-module build, whose extension-less import paths Node's own ESM loader
 * refuses; `require` through tsx (which runs the CLI, the worker and the tests) or a bundler resolves them.
 * The registry is global, so registering from that build serves our copy of tfjs-core too.
 */
import { createRequire } from 'node:module';
import * as tf from '@tensorflow/tfjs-core';

let done = false;

export function registerGradients(): void {
  if (done || tf.getGradient(tf.BatchMatMul) !== undefined) {
    done = true;
    return;
  }
  try {
    createRequire(import.meta.url)('@tensorflow/tfjs-core/dist/register_all_gradients.js');
  } catch (error) {
    throw new Error(
      `training needs TensorFlow.js's gradients, and they could not be loaded ` +
        `(@tensorflow/tfjs-core/dist/register_all_gradients.js: ${(error as Error).message.split('\n')[0]})`,
    );
  }
  if (tf.getGradient(tf.BatchMatMul) === undefined) throw new Error('TensorFlow.js gradients did not register');
  done = true;
}
