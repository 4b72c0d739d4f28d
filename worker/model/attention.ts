/** Causal self-attention's core, softmax(q·kᵀ·scale + mask)·v, on [batch, n_head, ·, head_dim] tensors. */
import * as tf from '@tensorflow/tfjs-core';

export type Attend = (
  q: tf.Tensor4D,
  k: tf.Tensor4D,
  v: tf.Tensor4D,
  scale: number,
  mask: tf.Tensor2D | null,
) => tf.Tensor4D;

/** All heads in two batched products: the plain formulation, differentiable everywhere. */
export const attendBatched: Attend = (q, k, v, scale, mask) => {
  let scores = tf.matMul(tf.mul(q, scale), k, false, true); // [batch, n_head, time, positions]
  if (mask) scores = tf.add(scores, mask);
  return tf.matMul(tf.softmax(scores), v) as tf.Tensor4D;
};

/** Splits x [n, ...] into n tensors of `shape`, reading x once (wasm's slice copies all of x for every slice). */
function unstackOnHost(x: tf.Tensor, shape: [number, number]): tf.Tensor2D[] {
  const data = x.dataSync() as Float32Array;
  const size = shape[0] * shape[1];
  return Array.from({ length: data.length / size }, (_, i) => tf.tensor2d(data.subarray(i * size, (i + 1) * size), shape));
}

/**
 * The same, one head at a time, for inference on long inputs. wasm sends only 2-D untransposed products to
 * its fast kernel (XNNPACK); its batched product is a naive loop, 2–3× slower here over a whole prompt even
 * counting the copies that cut the heads apart. Not differentiable (the heads go through host memory), and
 * ~2 ms of op overhead per layer, so not worth it for a single new token.
 */
export const attendHeadByHead: Attend = (q, k, v, scale, mask) => {
  const [batch, nHead, time, headDim] = q.shape;
  const positions = k.shape[2];
  const queries = unstackOnHost(tf.mul(q, scale), [time, headDim]);
  const keysT = unstackOnHost(tf.transpose(k, [0, 1, 3, 2]), [headDim, positions]);
  const values = unstackOnHost(v, [positions, headDim]);
  let scores = tf.reshape(tf.stack(queries.map((qh, h) => tf.matMul(qh, keysT[h]))), [batch, nHead, time, positions]);
  if (mask) scores = tf.add(scores, mask);
  const weights = unstackOnHost(tf.softmax(scores), [time, positions]);
  return tf.reshape(tf.stack(weights.map((w, h) => tf.matMul(w, values[h]))), [batch, nHead, time, headDim]);
};
