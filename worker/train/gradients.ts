/**
 * Registers TensorFlow.js's op gradients, which training needs and tfjs-core's Node bundle leaves out (the
 * `@tensorflow/tfjs` umbrella registers them; we use tfjs-core alone).
 *
 * They exist only in tfjs-core's ES-module build, whose extension-less import paths Node's own ESM loader
 * refuses; `require` through tsx (which runs the CLI, the worker and the tests) or a bundler resolves them.
 * The registry is global, so registering from that build serves our copy of tfjs-core too. The production
 * build (scripts/build.mjs) has no tsx: it bundles that build into one CommonJS file next to this module.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';

let done = false;

export function registerGradients(): void {
  if (done || tf.getGradient(tf.BatchMatMul) !== undefined) {
    done = true;
    return;
  }
  const bundled = new URL('./tfjs-gradients.cjs', import.meta.url);
  const source = existsSync(fileURLToPath(bundled)) ? fileURLToPath(bundled) : '@tensorflow/tfjs-core/dist/register_all_gradients.js';
  try {
    createRequire(import.meta.url)(source);
  } catch (error) {
    throw new Error(
      `training needs TensorFlow.js's gradients, and they could not be loaded ` +
        `(${source}: ${(error as Error).message.split('\n')[0]})`,
    );
  }
  if (tf.getGradient(tf.BatchMatMul) === undefined) throw new Error('TensorFlow.js gradients did not register');
  done = true;
}
