/**
 * The matrix products of the decode step (decode.ts) on two cores and/or with int8 weights.
 *
 * Two threads: a partner thread (partner-thread.ts) multiplies the second block of rows of every weight
 * matrix while this thread does the first. The blocks are rows of the matrix as stored, so this thread's
 * share is an alias of the model's own weights (no copy, see BackendMemory.alias), and so is the partner's
 * where the backend's heap is shared memory (worker/wasm-shared-heap.ts); elsewhere the partner gets a copy
 * of its share (shared-place.ts):
 * - a weight used as stored, x[R, k] · W[k, n]: rows of W are a split of k, so each side multiplies its
 *   columns of x and the two partial sums are added (this side adds the bias);
 * - a weight used transposed (the tied output layer, wte [vocab, C]): rows of W are a split of the outputs,
 *   so each side makes its columns of the result;
 * - an MLP is split by hidden units (columns of c_fc, the same rows of c_proj), so each side runs its half
 *   end to end and only the two partial sums meet: one hand-off per MLP, and its GELU is shared too.
 *
 * Fast precision: each side also keeps its share in int8 with a scale per 32 weights (kernels/q8) and uses
 * it for products of at most 4 rows (decoding); prompts keep float32. The int8 weights read 3.6× fewer bytes
 * per token, which is what decoding is bound by.
 *
 * The model keeps its whole float32 weights, so any product can still run here alone in float32: when it is
 * too small to be worth a hand-off, and for good if the partner fails or stops answering.
 */
import os from 'node:os';
import type * as tf from '@tensorflow/tfjs-core';
import type { BackendMemory, Float32Info } from '../kernels/backend-memory.js';
import { Q8_GROUP, Q8_MAX_VECTORS, Q8Runner, type Q8Block } from '../kernels/q8/runner.js';
import { activateInPlace, f32Kernels, f32FixedScratchFloats, f32ScratchFloats } from '../kernels/f32/f32.js';
import type { AttentionHelper } from '../kernels/attention/heads.js';
import { PartnerChannel, type PartnerChannelOptions, type PartnerSizes } from './partner-channel.js';
import { Job, type Activation, type PartnerMlp, type PartnerWeight } from './protocol.js';
import { HeapPlace, SharedArena } from './shared-place.js';
import { isSharedHeap } from '../../wasm-shared-heap.js';
import { OutputScreen } from '../output-screen.js';

/** `INKLING_THREADS=1` keeps the engine on one core; unset, it uses two where the machine has them. */
export const THREADS_ENV = 'INKLING_THREADS';

export function wantedThreads(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env[THREADS_ENV];
  const cores = typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
  if (raw === undefined || raw === '') return Math.min(2, cores);
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`${THREADS_ENV} must be a positive integer, got "${raw}"`);
  return Math.min(2, n);
}

/** exact: float32 everywhere. fast: int8 weights for decoding (prompts stay float32). */
export type Precision = 'exact' | 'fast';
export const PRECISIONS: readonly Precision[] = ['exact', 'fast'];
/** `INKLING_PRECISION=fast` loads models with int8 decoding unless a caller says otherwise. */
export const PRECISION_ENV = 'INKLING_PRECISION';

export function wantedPrecision(env: NodeJS.ProcessEnv = process.env): Precision {
  const raw = env[PRECISION_ENV];
  if (raw === undefined || raw === '') return 'exact';
  if (!(PRECISIONS as readonly string[]).includes(raw)) throw new RangeError(`${PRECISION_ENV} must be exact or fast, got "${raw}"`);
  return raw as Precision;
}

/** Why a model cannot have int8 weights (null: it can): the kernels quantize inputs in groups of 32. */
export function int8UnsupportedReason(config: { nEmbd: number; nInner: number }): string | null {
  const odd = [config.nEmbd, config.nInner].filter((w) => w % Q8_GROUP !== 0);
  return odd.length === 0 ? null : `int8 weights need each width to be a multiple of ${Q8_GROUP}; this model has ${odd.join(', ')}`;
}

/**
 * Float32 products smaller than this (multiply-adds) run on this thread alone: handing off costs ~20–40 µs
 * (two futex wakes, the input and output copies), what a product of this size takes on one core.
 */
const MIN_SPLIT_MACS = 1 << 18;

/**
 * Multiply–adds of attention a layer from which the partner takes half of the heads (GPT-2 small's prompts of
 * 17 tokens or more are above both). Exact: a GPT-2-small decode step measured no gain at 160 and 248 positions (the float32 products already
 * keep both threads on the memory bus; the hand-offs cost what half the heads save) and ~2 ms a token at 700
 * (1.1 M a layer). Fast: the int8 products leave the partner room, and sharing measured 8–10 % a token at 160 and
 * 248 positions and ~3 % at 32 (49 k), with no gain at 16 (one process alternating; performance log, section 9).
 */
const ATTENTION_SPLIT_MACS: Record<Precision, number> = { exact: 400_000, fast: 48_000 };

export interface SplitWeight {
  /** The matrix [rows, cols] as the model holds it. */
  weight: tf.TensorInfo;
  transposed: boolean;
  /** Whether a bias goes with it (only weights used as stored may have one: it is added on this side). */
  hasBias: boolean;
}

/** A GPT-2 MLP: c_fc [width, hidden] and c_proj [hidden, width] with their biases. */
export interface SplitMlp {
  fc: tf.TensorInfo;
  fcBias: tf.TensorInfo;
  proj: tf.TensorInfo;
  projBias: tf.TensorInfo;
  activation: Activation;
}

export interface DecodeProductsOptions extends PartnerChannelOptions {
  threads: number;
  precision: Precision;
  /**
   * Exact precision: also keep the tied output layer in int8 to screen it (output-screen.ts), where our kernels
   * multiply in the backend's heap. The fast precision's output layer is int8 already.
   */
  screen?: boolean;
  /**
   * Let the partner read its share of the weights in place where the backend's heap is shared memory (the
   * default); false: always give it a copy in an arena of its own (tests).
   */
  inPlace?: boolean;
}

interface Entry {
  whole: tf.TensorInfo;
  rows: number;
  cols: number;
  transposed: boolean;
  /** Rows [0, split) are this thread's; split = rows when nothing is handed off. */
  split: number;
  /** Alias of rows [0, split) when split < rows. */
  mine: Float32Info | null;
  /** This thread's rows in int8 (fast precision), with the bias when the weight has one. */
  q8: Q8Block | null;
}

interface MlpEntry {
  width: number;
  hidden: number;
  /** This thread's hidden units are [0, split). */
  split: number;
  activation: Activation;
  /** c_fc as the model holds it: this side multiplies its columns [0, split) in place where the backend can. */
  fc: tf.TensorInfo;
  /**
   * Otherwise columns [0, split) of c_fc copied out (columns of a row-major matrix are not contiguous), or
   * c_fc's alias when split = hidden; null when the products read the columns in place.
   */
  fcMine: Float32Info | null;
  fcBiasMine: Float32Info;
  /** Rows [0, split) of c_proj (alias). */
  projMine: Float32Info;
  projBias: tf.TensorInfo;
  fcCopied: boolean;
  q8fc: Q8Block | null;
  q8proj: Q8Block | null;
}

export class DecodeProducts {
  private helper: AttentionHelper | null = null;

  private constructor(
    readonly precision: Precision,
    /** The int8 screen of the tied output layer (exact precision; see output-screen.ts), or null. */
    readonly screen: OutputScreen | null,
    private readonly memory: BackendMemory,
    private readonly entries: Entry[],
    private readonly mlps: MlpEntry[],
    private readonly partner: PartnerChannel | null,
    private readonly q8: Q8Runner | null,
    /** Bytes of weights the partner holds beyond the model's: its float32 share unless it reads it in place, its int8 copy in fast precision. */
    private readonly partnerBytes: number,
    /** Whether the partner sees the model's weights and buffers in place (the backend's heap is shared). */
    private readonly inPlace: boolean,
  ) {}

  /**
   * Prepares the products of a model whose weights live in `memory` (the wasm backend's): starts the partner
   * with its share when two threads are asked for (resolving once it holds them), quantizes for `fast`.
   */
  static async start(memory: BackendMemory, weights: SplitWeight[], mlps: SplitMlp[], options: DecodeProductsOptions): Promise<DecodeProducts> {
    const two = options.threads >= 2;
    const fast = options.precision === 'fast';
    // The tied output layer (wte, used transposed), screened where our kernels reach it in the heap.
    const head = weights.findIndex((w) => w.transposed);
    const screen =
      !fast && options.screen === true && head >= 0 && memory.heap !== null && memory.transposedInPlace && weights[head].weight.shape.at(-1)! % Q8_GROUP === 0;
    /** Which products this side and the partner keep in int8. */
    const int8 = (index: number) => fast || (screen && index === head);
    // A split of a product's inputs must fall on a group of 32 for the int8 halves to quantize as the whole.
    const half = (n: number, splitsInputs: boolean) => {
      const h = fast && splitsInputs ? Math.floor(n / 2 / Q8_GROUP) * Q8_GROUP : Math.floor(n / 2);
      return h > 0 ? h : n;
    };
    const entries: Entry[] = weights.map(({ weight, transposed, hasBias }) => {
      const [rows, cols] = weight.shape.slice(-2);
      const splittable = two && !(transposed && hasBias);
      return { whole: weight, rows, cols, transposed, split: splittable ? half(rows, !transposed) : rows, mine: null, q8: null };
    });
    const mlpSplits = mlps.map((m) => {
      const [width, hidden] = m.fc.shape.slice(-2);
      return { width, hidden, split: two ? half(hidden, true) : hidden };
    });

    // The partner quantizes its share on its own thread while this one quantizes its own: loading the fast
    // precision no longer takes the two halves one after the other.
    const partnerStarting = two ? startPartner(memory, entries, mlps, mlpSplits, int8, fast, options) : null;
    let ours: { q8: Q8Runner | null; mlpEntries: MlpEntry[]; outputScreen: OutputScreen | null };
    const mlpEntries: MlpEntry[] = [];
    try {
      const q8 = fast || screen ? new Q8Runner() : null;
      for (const [index, e] of entries.entries()) {
        if (e.split < e.rows) e.mine = memory.alias(e.whole, 0, [1, e.split, e.cols]);
        if (q8 && int8(index)) {
          const [k, n] = e.transposed ? [e.cols, e.split] : [e.split, e.cols];
          e.q8 = q8.place(memory.view(e.whole).subarray(0, e.split * e.cols), k, n, e.transposed ? 'out-in' : 'in-out');
        }
      }
      for (const [i, m] of mlps.entries()) mlpEntries.push(mlpEntry(memory, m, mlpSplits[i], fast ? q8 : null));
      const outputScreen = screen ? new OutputScreen(memory.view(entries[head].whole), entries[head].rows, entries[head].cols) : null;
      ours = { q8, mlpEntries, outputScreen };
    } catch (error) {
      releaseEntries(memory, entries, mlpEntries);
      partnerStarting?.then(({ partner }) => partner.dispose(), () => {});
      throw error;
    }
    let started: Awaited<ReturnType<typeof startPartner>> | null;
    try {
      started = partnerStarting ? await partnerStarting : null;
    } catch (error) {
      releaseEntries(memory, entries, ours.mlpEntries);
      throw error;
    }
    return new DecodeProducts(
      options.precision,
      ours.outputScreen,
      memory,
      entries,
      ours.mlpEntries,
      started?.partner ?? null,
      ours.q8,
      started?.weightBytes ?? 0,
      started?.inPlace ?? false,
    );
  }

  /** Threads the products run on now (1 once the partner is gone). */
  get threads(): number {
    return this.partner && !this.partner.lost ? 2 : 1;
  }

  /** Why the partner is no longer used (null while it is, or when there never was one). */
  get lost(): string | null {
    return this.partner?.lost ?? null;
  }

  /**
   * Bytes of weights held beyond the model's own: the partner's copy of its share (where it cannot read it in
   * place) and its int8 copies, this side's int8 copies (every product's in fast precision, the screened output
   * layer's in exact), c_fc halves copied where the backend cannot multiply columns in place.
   */
  get extraBytes(): number {
    return this.partnerBytes + (this.q8?.bytes ?? 0) + this.mlps.reduce((sum, m) => sum + (m.fcCopied ? m.width * m.split * 4 : 0), 0);
  }

  /**
   * x [1, R, k] times weight `index` (+ bias) → [1, R, n], as `BackendMemory.matMul`. `int8`: with the int8
   * weights where it has them and R ≤ 4 (the fast precision's default; the exact one's output-layer screen).
   */
  matMul(x: tf.TensorInfo, index: number, bias: tf.TensorInfo | null, int8 = this.precision === 'fast'): Float32Info {
    const { memory } = this;
    const e = this.entries[index];
    const rows = x.shape[1];
    const fast = int8 && e.q8 !== null && rows <= Q8_MAX_VECTORS;
    const partner = this.partner && !this.partner.lost && e.split < e.rows ? this.partner : null;
    const alone = () => memory.matMul(x, reshape3d(e.whole), bias, e.transposed);
    if (!partner) return fast && e.split === e.rows ? this.q8Product(e, x, rows, bias) : alone();
    if (!fast && rows * e.rows * e.cols < MIN_SPLIT_MACS) return alone();
    if (this.inPlace && !e.transposed && rows > Q8_MAX_VECTORS) return this.columnProduct(e, index, x, rows, bias, partner) ?? alone();

    const k = e.transposed ? e.cols : e.rows;
    const theirK = e.transposed ? k : e.rows - e.split;
    const theirN = e.transposed ? e.rows - e.split : e.cols;
    if (!partner.ensureRoom(rows)) return alone();
    // Post the partner's input first, so that both sides work at once.
    const xs = memory.view(x);
    if (e.transposed) partner.input.set(xs.subarray(0, rows * k));
    else for (let r = 0; r < rows; r++) partner.input.set(xs.subarray(r * k + e.split, (r + 1) * k), r * theirK);
    partner.post(fast ? Job.productFast : Job.product, index, rows);

    let ours: Float32Info;
    if (e.transposed) {
      ours = fast ? this.q8Product(e, x, rows) : memory.matMul(x, e.mine!, null, true);
    } else {
      const left = memory.alloc([1, rows, e.split]);
      try {
        const [from, to] = [memory.view(x), memory.view(left)];
        for (let r = 0; r < rows; r++) to.set(from.subarray(r * k, r * k + e.split), r * e.split);
        ours = fast ? this.q8Product(e, left, rows, bias) : memory.matMul(left, e.mine!, bias, false);
      } finally {
        memory.free(left);
      }
    }
    if (!partner.finish()) {
      memory.free(ours);
      return alone();
    }
    if (!e.transposed) {
      this.addPartial(ours, partner, rows * theirN);
      return ours;
    }
    const theirs = partner.output.subarray(0, rows * theirN);
    const n = e.rows;
    const out = memory.alloc([1, rows, n]);
    const [mine, all] = [memory.view(ours), memory.view(out)];
    for (let r = 0; r < rows; r++) {
      all.set(mine.subarray(r * e.split, (r + 1) * e.split), r * n);
      all.set(theirs.subarray(r * theirN, (r + 1) * theirN), r * n + e.split);
    }
    memory.free(ours);
    return out;
  }

  /**
   * MLP `layer` of x [1, R, width] → [1, R, width] (both biases added), or null when it should run the
   * ordinary way on this thread (too small, or the partner is gone).
   */
  mlp(x: tf.TensorInfo, layer: number): Float32Info | null {
    const { memory } = this;
    const m = this.mlps[layer];
    const rows = x.shape[1];
    const fast = m.q8fc !== null && rows <= Q8_MAX_VECTORS;
    const partner = this.partner && !this.partner.lost ? this.partner : null;
    if (!partner) return fast && m.split === m.hidden ? this.q8Mlp(m, x, rows) : null;
    if (!fast && rows * m.width * m.hidden < MIN_SPLIT_MACS) return null;
    if (!partner.ensureRoom(rows)) return null;
    partner.input.set(memory.view(x).subarray(0, rows * m.width));
    partner.post(fast ? Job.mlpFast : Job.mlp, layer, rows);

    let ours: Float32Info;
    if (fast) {
      ours = this.q8Mlp(m, x, rows);
    } else {
      const hidden = m.fcMine ? memory.matMul(x, m.fcMine, m.fcBiasMine, false) : memory.matMulColumns!(x, m.fc, 0, m.split, m.fcBiasMine);
      try {
        activateInPlace(memory, hidden, m.activation);
        ours = memory.matMul(hidden, m.projMine, m.projBias, false);
      } finally {
        memory.free(hidden);
      }
    }
    if (!partner.finish()) {
      memory.free(ours);
      return null;
    }
    this.addPartial(ours, partner, rows * m.width);
    return ours;
  }

  /**
   * The partner as a second thread for attention heads, where it sees the backend's heap (it writes its heads'
   * keys and values into the cache, reads qkv and writes the output in place); null elsewhere, or once it is lost.
   */
  attentionHelper(): AttentionHelper | null {
    const partner = this.partner;
    if (!partner || partner.lost || !this.inPlace) return null;
    // Made once: the decode step asks for it every layer of every token.
    this.helper ??= {
      minSplitMacs: ATTENTION_SPLIT_MACS[this.precision],
      start: (at, shape, from, mode) => {
        partner.postAttention({ at, shape, from, mode });
        return true;
      },
      finish: () => partner.finish(),
    };
    return this.helper;
  }

  /** Stops the partner and gives back the aliases and copies (before the model frees its weights). */
  dispose(): void {
    releaseEntries(this.memory, this.entries, this.mlps.splice(0));
    this.partner?.dispose();
  }

  /**
   * A prompt's x [1, R, k] · W [k, n] split by output columns: this side the first half, the partner the rest
   * (Job.columns), both at full depth k straight into one output, so no input is copied and nothing added.
   * Decoding splits by rows of W instead: each side then streams half of the matrix. Null if the partner fails.
   */
  private columnProduct(e: Entry, index: number, x: tf.TensorInfo, rows: number, bias: tf.TensorInfo | null, partner: PartnerChannel): Float32Info | null {
    const { memory } = this;
    const heap = memory.heap!;
    const [k, n] = [e.rows, e.cols];
    // A multiple of the kernel's 8-column panels where there are a few of them.
    const half = n >= 16 ? Math.floor(n / 16) * 8 : Math.floor(n / 2);
    // Its input and output are in place; its scratch (the repacked rows) is among the places sized by rows.
    if (half === 0 || !partner.ensureRoom(rows)) return null;
    const out = memory.alloc([1, rows, n]);
    const biasAt = bias ? heap.offset(bias) : 0;
    partner.postColumns(index, rows, heap.offset(x), heap.offset(out), half, biasAt);
    const scratch = memory.alloc([f32ScratchFloats(k, half, rows)]);
    try {
      f32Kernels(heap.memory).gemmNN(heap.offset(x), rows, k, k, heap.offset(e.whole), half, n, biasAt, heap.offset(out), n, heap.offset(scratch));
    } finally {
      memory.free(scratch);
    }
    if (partner.finish()) return out;
    // Not freed: a partner that stopped answering may still be writing into it (once, it is never asked again).
    return null;
  }

  /** ours += the partner's partial sum (its first `floats` outputs): in SIMD where both lie in the backend's heap. */
  private addPartial(ours: Float32Info, partner: PartnerChannel, floats: number): void {
    const heap = this.memory.heap;
    if (heap && heap.memory === partner.memory) f32Kernels(heap.memory).add(heap.offset(ours), partner.outputAt, floats);
    else addInto(this.memory.view(ours), partner.output.subarray(0, floats));
  }

  /** This thread's int8 rows of `e` times x (at most 4 rows) into a new buffer; the bias only where given. */
  private q8Product(e: Entry, x: tf.TensorInfo, rows: number, bias: tf.TensorInfo | null = null): Float32Info {
    const n = e.transposed ? e.split : e.cols;
    const out = this.memory.alloc([1, rows, n]);
    this.q8!.run(e.q8!, this.memory.view(x), rows, this.memory.view(out));
    if (bias) {
      const [y, b] = [this.memory.view(out), this.memory.view(bias)];
      for (let r = 0; r < rows; r++) for (let i = 0; i < n; i++) y[r * n + i] += b[i];
    }
    return out;
  }

  private q8Mlp(m: MlpEntry, x: tf.TensorInfo, rows: number): Float32Info {
    const { memory } = this;
    // The hidden values in backend memory, where the activation runs in SIMD (activateInPlace).
    const hidden = memory.alloc([rows * m.split]);
    try {
      this.q8!.run(m.q8fc!, memory.view(x), rows, memory.view(hidden));
      activateInPlace(memory, hidden, m.activation);
      const out = memory.alloc([1, rows, m.width]);
      this.q8!.run(m.q8proj!, memory.view(hidden), rows, memory.view(out));
      return out;
    } finally {
      memory.free(hidden);
    }
  }
}

/** Gives back this side's aliases of the weights and its copies of c_fc columns. */
function releaseEntries(memory: BackendMemory, entries: Entry[], mlps: MlpEntry[]): void {
  for (const e of entries) {
    if (e.mine) memory.releaseAlias(e.mine);
    e.mine = null;
  }
  for (const m of mlps) {
    if (m.fcCopied) memory.free(m.fcMine!);
    else if (m.fcMine) memory.releaseAlias(m.fcMine);
    memory.releaseAlias(m.fcBiasMine);
    memory.releaseAlias(m.projMine);
  }
}

function addInto(sum: Float32Array, part: Float32Array): void {
  for (let i = 0; i < sum.length; i++) sum[i] += part[i];
}

interface MlpSplit {
  width: number;
  hidden: number;
  split: number;
}

/** Rows per step the partner's input/output places may grow to; larger steps run on this thread alone. */
const MAX_PARTNER_ROWS = 2048;
/** A 32-bit WebAssembly memory holds at most 65,536 pages of 64 KiB; one page is kept in reserve. */
const MAX_SHARED_BYTES = 65536 * 65536 - 65536;

/**
 * Starts the partner on its share: rows [split, rows) of each weight; columns [split, hidden) of each c_fc
 * with its bias and rows [split, hidden) of each c_proj. Read in place where the backend's heap is shared
 * memory; else copied into an arena of the partner's own.
 */
async function startPartner(
  memory: BackendMemory,
  entries: Entry[],
  mlps: SplitMlp[],
  splits: MlpSplit[],
  int8: (index: number) => boolean,
  fast: boolean,
  options: DecodeProductsOptions,
): Promise<{ partner: PartnerChannel; weightBytes: number; inPlace: boolean }> {
  const shapes = entries.map((e) => {
    const theirs = e.rows - e.split;
    return e.transposed ? { k: e.cols, n: theirs, floats: theirs * e.cols } : { k: theirs, n: e.cols, floats: theirs * e.cols };
  });
  const mlpShapes = splits.map(({ width, hidden, split }) => ({ width, hidden: hidden - split }));
  const sizes: PartnerSizes = {
    input: Math.max(1, ...shapes.map((s) => s.k), ...mlpShapes.map((m) => m.width)),
    output: Math.max(1, ...shapes.map((s) => s.n), ...mlpShapes.map((m) => m.width)),
    hidden: Math.max(1, ...mlpShapes.map((m) => m.hidden)),
    // What does not grow with the rows (a decode step's scratch, a prompt's panels); the channel adds room for
    // each job's repacked rows (`depth`).
    scratch: Math.max(
      1,
      ...shapes.map((s) => f32FixedScratchFloats(s.k, s.n)),
      // Job.columns: the other half of a whole matrix's columns (in place only).
      ...entries.filter((e) => !e.transposed).map((e) => f32FixedScratchFloats(e.rows, e.cols)),
      ...mlpShapes.flatMap((m) => [f32FixedScratchFloats(m.width, m.hidden), f32FixedScratchFloats(m.hidden, m.width)]),
    ),
    // The deepest product it runs: prompts repack rows × depth floats of their input into the scratch.
    depth: Math.max(1, ...shapes.map((s) => s.k), ...entries.filter((e) => !e.transposed).map((e) => e.rows), ...mlpShapes.flatMap((m) => [m.width, m.hidden])),
    maxRows: MAX_PARTNER_ROWS,
  };
  const mlpFloats = mlpShapes.reduce((sum, m) => sum + m.hidden * (2 * m.width + 1), 0);
  const f32Bytes = 4 * (shapes.reduce((sum, s) => sum + s.floats, 0) + mlpFloats);
  // int8: a byte per weight and a float32 scale per 32 (kernels/q8), which the partner makes and keeps.
  const int8Floats = shapes.reduce((sum, s, i) => sum + (int8(i) ? s.floats : 0), 0) + (fast ? mlpFloats : 0);
  const q8Bytes = Math.ceil(int8Floats * (1 + 4 / Q8_GROUP));
  const heap = memory.heap;
  if (options.inPlace !== false && heap && isSharedHeap(heap.memory)) {
    const at = (info: tf.TensorInfo, from: number) => heap.offset(info) + 4 * from;
    const share = partnerShare(entries, mlps, splits, int8, {
      inPlace: true,
      slice: at,
      columns: (fc, _width, hidden, split) => ({ at: at(fc, split), ld: hidden }),
    });
    const partner = await PartnerChannel.start(new HeapPlace(memory), { ...share, fast }, sizes, options);
    return { partner, weightBytes: q8Bytes, inPlace: true };
  }

  const slack = 16 * (entries.length + 3 * mlps.length + 8);
  const rowBytes = 4 * (sizes.input + sizes.output + sizes.hidden + sizes.depth);
  // Room for the places' doubling history: 4 + 8 + … + 2,048 rows < 2 × 2,048, each with its scratch.
  const placements = Math.log2(MAX_PARTNER_ROWS / 4) + 1;
  let arena: SharedArena;
  try {
    arena = new SharedArena(
      f32Bytes + 2 * 4 * sizes.scratch + 8 * rowBytes + slack,
      Math.min(MAX_SHARED_BYTES, f32Bytes + placements * 4 * sizes.scratch + 2 * MAX_PARTNER_ROWS * rowBytes + slack),
    );
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new Error(`the second engine thread did not start: no memory for its ${Math.round(f32Bytes / 2 ** 20)} MiB share (${reason})`);
  }
  const share = partnerShare(entries, mlps, splits, int8, {
    inPlace: false,
    slice: (info, from, to) => arena.put(memory.view(info).subarray(from, to)),
    columns: (fc, width, hidden, split) => {
      const theirs = hidden - split;
      const at = arena.reserve(width * theirs)!;
      copyColumns(memory.view(fc), width, hidden, split, theirs, arena.f32(at, width * theirs));
      return { at, ld: theirs };
    },
  });
  const partner = await PartnerChannel.start(arena, { ...share, fast }, sizes, options);
  return { partner, weightBytes: f32Bytes + q8Bytes, inPlace: false };
}

/** Where the partner finds each part of its share: in place in the backend's heap, or copied into an arena. */
interface ShareLocator {
  inPlace: boolean;
  /** Byte offset of floats [from, to) of a tensor. */
  slice(info: tf.TensorInfo, from: number, to: number): number;
  /** Columns [split, hidden) of a c_fc [width, hidden], and the floats from one of their rows to the next. */
  columns(fc: tf.TensorInfo, width: number, hidden: number, split: number): { at: number; ld: number };
}

/** The partner's share: rows [split, rows) of each weight; its half of each MLP's hidden units. */
function partnerShare(
  entries: Entry[],
  mlps: SplitMlp[],
  splits: MlpSplit[],
  int8: (index: number) => boolean,
  locate: ShareLocator,
): { weights: PartnerWeight[]; mlps: PartnerMlp[] } {
  const weights = entries.map((e, index): PartnerWeight => ({
    rows: e.rows - e.split,
    cols: e.cols,
    transposed: e.transposed,
    at: locate.slice(e.whole, e.split * e.cols, e.rows * e.cols),
    ld: e.cols,
    // Job.columns reads the whole matrix: only where it lies in place.
    whole: locate.inPlace && !e.transposed ? { at: locate.slice(e.whole, 0, e.rows * e.cols), rows: e.rows } : null,
    int8: int8(index),
  }));
  const shares = mlps.map((m, i): PartnerMlp => {
    const { width, hidden, split } = splits[i];
    const fc = locate.columns(m.fc, width, hidden, split);
    return {
      width,
      hidden: hidden - split,
      activation: m.activation,
      fcAt: fc.at,
      fcLd: fc.ld,
      fcBiasAt: locate.slice(m.fcBias, split, hidden),
      projAt: locate.slice(m.proj, split * width, hidden * width),
    };
  });
  return { weights, mlps: shares };
}

function mlpEntry(memory: BackendMemory, m: SplitMlp, { width, hidden, split }: MlpSplit, q8: Q8Runner | null): MlpEntry {
  const inPlace = split < hidden && memory.matMulColumns !== null;
  const fcCopied = split < hidden && !inPlace;
  let fcMine: Float32Info | null = null;
  if (fcCopied) {
    fcMine = memory.alloc([1, width, split]);
    const [all, mine] = [memory.view(m.fc), memory.view(fcMine)];
    copyColumns(all, width, hidden, 0, split, mine);
  } else if (!inPlace) {
    fcMine = memory.alias(m.fc, 0, [1, width, hidden]);
  }
  const fcBiasMine = memory.alias(m.fcBias, 0, [split]);
  const projMine = memory.alias(m.proj, 0, [1, split, width]);
  const entry: MlpEntry = {
    width,
    hidden,
    split,
    activation: m.activation,
    fc: m.fc,
    fcMine,
    fcBiasMine,
    projMine,
    projBias: m.projBias,
    fcCopied,
    q8fc: null,
    q8proj: null,
  };
  if (q8) {
    const fcColumns = fcMine ? memory.view(fcMine) : copyColumns(memory.view(m.fc), width, hidden, 0, split, new Float32Array(width * split));
    entry.q8fc = q8.place(fcColumns, width, split, 'in-out', memory.view(fcBiasMine));
    entry.q8proj = q8.place(memory.view(projMine), split, width, 'in-out', memory.view(m.projBias));
  }
  return entry;
}

/** Columns [from, from + count) of a row-major [rows, cols] matrix into `out`, contiguous; returns `out`. */
function copyColumns(all: Float32Array, rows: number, cols: number, from: number, count: number, out: Float32Array): Float32Array {
  for (let r = 0; r < rows; r++) out.set(all.subarray(r * cols + from, r * cols + from + count), r * count);
  return out;
}

function reshape3d(weight: tf.TensorInfo): tf.TensorInfo {
  return { dataId: weight.dataId, shape: [1, ...weight.shape.slice(-2)], dtype: weight.dtype };
}
