/**
 * Reader and writer for the safetensors format (https://huggingface.co/docs/safetensors):
 * an 8-byte little-endian header length N, N bytes of JSON describing each tensor
 * (`dtype`, `shape`, `data_offsets` relative to the data section), then the raw tensor bytes.
 *
 * Hand-written rather than taken from npm: the format is small, and we need what the packages we looked at
 * do not give together: strict validation with errors that name the tensor, reading one tensor at a time
 * from a file (a 1.5B-parameter checkpoint is 6 GB, more than one Buffer can hold), and F16/BF16 → F32.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import { ModelFormatError } from './errors.js';

/** Bytes per element of every dtype the format defines. Only F32, F16 and BF16 can be read as numbers. */
const DTYPE_BYTES: Readonly<Record<string, number>> = {
  BOOL: 1, U8: 1, I8: 1, F8_E5M2: 1, F8_E4M3: 1,
  I16: 2, U16: 2, F16: 2, BF16: 2,
  I32: 4, U32: 4, F32: 4,
  I64: 8, U64: 8, F64: 8,
};

/** A header bigger than this is not a real checkpoint (the reference implementation uses the same limit). */
const MAX_HEADER_BYTES = 100_000_000;
/** Node cannot read or write more than 2 GiB in one call. */
const MAX_READ_BYTES = 1 << 30;

export interface SafetensorsTensorInfo {
  name: string;
  dtype: string;
  shape: number[];
  /** Absolute position of the first byte in the file (or buffer). */
  byteOffset: number;
  byteLength: number;
}

/** Where the bytes come from: an open file (read at offsets on demand) or a Buffer already in memory. */
interface ByteSource {
  readonly label: string;
  readonly size: number;
  /** Fills `into` with the bytes at `offset`; throws if the source ends first. */
  read(offset: number, into: Uint8Array): void;
  close(): void;
}

function fileSource(path: string): ByteSource {
  let fd: number | null;
  try {
    fd = openSync(path, 'r');
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new ModelFormatError('missing_file', `${path}: file not found`);
    }
    throw cause;
  }
  const size = fstatSync(fd).size;
  return {
    label: path,
    size,
    read(offset, into) {
      if (fd === null) throw new Error(`${path}: reader is closed`);
      let done = 0;
      while (done < into.length) {
        const want = Math.min(into.length - done, MAX_READ_BYTES);
        const got = readSync(fd, into, done, want, offset + done);
        if (got === 0) {
          throw new ModelFormatError('truncated_file', `${path}: file ended early (it changed while being read?)`);
        }
        done += got;
      }
    },
    close() {
      if (fd !== null) closeSync(fd);
      fd = null;
    },
  };
}

function bufferSource(buffer: Uint8Array, label: string): ByteSource {
  return {
    label,
    size: buffer.length,
    read(offset, into) {
      into.set(buffer.subarray(offset, offset + into.length));
    },
    close() {},
  };
}

const isLittleEndianHost = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

let halfTable: Float32Array | null = null;

/** Every float16 bit pattern's float32 value: a table lookup per element is the fastest conversion in JS. */
function float16Table(): Float32Array {
  if (halfTable) return halfTable;
  halfTable = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exponent = (h >> 10) & 0x1f;
    const mantissa = h & 0x3ff;
    if (exponent === 0) halfTable[h] = sign * mantissa * 2 ** -24; // zero and subnormals (sign kept: −0)
    else if (exponent === 31) halfTable[h] = mantissa ? NaN : sign * Infinity;
    else halfTable[h] = sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
  }
  return halfTable;
}

/** Half-precision values converted per piece when read into a buffer (readFloat32Into): 128 KiB of bits. */
const HALF_CHUNK = 1 << 16;

/** IEEE half-precision bit patterns → float32 values (exact). */
export function float16ToFloat32(bits: Uint16Array): Float32Array {
  const out = new Float32Array(bits.length);
  float16Into(bits, out);
  return out;
}

function float16Into(bits: Uint16Array, out: Float32Array): void {
  const table = float16Table();
  for (let i = 0; i < bits.length; i++) out[i] = table[bits[i]];
}

/** bfloat16 is the top half of a float32, so widening is a shift. */
export function bfloat16ToFloat32(bits: Uint16Array): Float32Array {
  const out = new Float32Array(bits.length);
  bfloat16Into(bits, out);
  return out;
}

function bfloat16Into(bits: Uint16Array, out: Float32Array): void {
  const outBits = new Uint32Array(out.buffer, out.byteOffset, out.length);
  for (let i = 0; i < bits.length; i++) outBits[i] = bits[i] << 16;
}

/** float32 → IEEE half-precision bit patterns, rounding to nearest even (as numpy and PyTorch do). */
export function float32ToFloat16(values: Float32Array): Uint16Array {
  const inBits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const x = inBits[i];
    const sign = (x >>> 16) & 0x8000;
    const exponent = (x >>> 23) & 0xff;
    const mantissa = x & 0x7fffff;
    if (exponent === 0xff) {
      out[i] = sign | 0x7c00 | (mantissa ? 0x200 : 0); // Inf, or a quiet NaN
      continue;
    }
    const e = exponent - 127 + 15;
    if (e >= 31) {
      out[i] = sign | 0x7c00; // too large: Inf
    } else if (e <= 0) {
      if (e < -10) {
        out[i] = sign; // below half the smallest subnormal: ±0
        continue;
      }
      const m = mantissa | 0x800000;
      const shift = 14 - e;
      let half = m >>> shift;
      const rest = m & ((1 << shift) - 1);
      const halfway = 1 << (shift - 1);
      if (rest > halfway || (rest === halfway && half & 1)) half++;
      out[i] = sign | half;
    } else {
      let half = sign | (e << 10) | (mantissa >>> 13);
      const rest = mantissa & 0x1fff;
      if (rest > 0x1000 || (rest === 0x1000 && half & 1)) half++; // a carry into the exponent is still right
      out[i] = half;
    }
  }
  return out;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

/** Reads tensors from a safetensors file or buffer. The header is validated completely when it is opened. */
export class SafetensorsReader {
  readonly metadata: Readonly<Record<string, string>>;
  readonly tensors: ReadonlyMap<string, SafetensorsTensorInfo>;

  private constructor(private readonly source: ByteSource) {
    try {
      const { metadata, tensors } = parseHeader(source);
      this.metadata = metadata;
      this.tensors = tensors;
    } catch (error) {
      source.close();
      throw error;
    }
  }

  /** Opens a file and validates its header; tensor bytes are read only when asked for. Call `close()`. */
  static open(path: string): SafetensorsReader {
    return new SafetensorsReader(fileSource(path));
  }

  static fromBuffer(buffer: Uint8Array, label = 'safetensors buffer'): SafetensorsReader {
    return new SafetensorsReader(bufferSource(buffer, label));
  }

  get label(): string {
    return this.source.label;
  }

  info(name: string): SafetensorsTensorInfo {
    const info = this.tensors.get(name);
    if (!info) throw new ModelFormatError('missing_tensor', `${this.label}: no tensor named '${name}'`, name);
    return info;
  }

  /** The tensor's raw little-endian bytes. */
  readBytes(name: string): Uint8Array {
    const info = this.info(name);
    const bytes = new Uint8Array(info.byteLength);
    this.source.read(info.byteOffset, bytes);
    return bytes;
  }

  /** The tensor's values as float32 (F32 as stored, F16 and BF16 converted exactly). */
  readFloat32(name: string): Float32Array {
    const { byteLength, dtype } = this.info(name);
    // An unsupported dtype gets an empty array here and its clear error from readFloat32Into.
    const out = new Float32Array(dtype in DTYPE_BYTES ? byteLength / DTYPE_BYTES[dtype] : 0);
    this.readFloat32Into(name, out);
    return out;
  }

  /**
   * readFloat32 into `out` (the tensor's size), e.g. straight into a backend's memory: the file is read into
   * it with no array of its own in between (F16 and BF16 through a small buffer, converted piece by piece).
   */
  readFloat32Into(name: string, out: Float32Array): void {
    const info = this.info(name);
    if (!isLittleEndianHost) throw new Error('safetensors: big-endian machines are not supported');
    if (info.dtype !== 'F32' && info.dtype !== 'F16' && info.dtype !== 'BF16') {
      throw new ModelFormatError(
        'unsupported_dtype',
        `${this.label}: tensor '${name}' has dtype ${info.dtype}; only F32, F16 and BF16 weights can be used`,
        name,
      );
    }
    const count = info.byteLength / DTYPE_BYTES[info.dtype];
    if (out.length !== count) throw new RangeError(`readFloat32Into: '${name}' has ${count} values, the buffer ${out.length}`);
    if (info.dtype === 'F32') {
      this.source.read(info.byteOffset, new Uint8Array(out.buffer, out.byteOffset, out.byteLength));
      return;
    }
    const convert = info.dtype === 'F16' ? float16Into : bfloat16Into;
    const bits = new Uint16Array(Math.min(count, HALF_CHUNK));
    for (let at = 0; at < count; at += bits.length) {
      const piece = bits.subarray(0, Math.min(bits.length, count - at));
      this.source.read(info.byteOffset + at * 2, new Uint8Array(piece.buffer, 0, piece.byteLength));
      convert(piece, out.subarray(at, at + piece.length));
    }
  }

  close(): void {
    this.source.close();
  }
}

function parseHeader(source: ByteSource): {
  metadata: Record<string, string>;
  tensors: Map<string, SafetensorsTensorInfo>;
} {
  const where = source.label;
  const fail = (code: ConstructorParameters<typeof ModelFormatError>[0], message: string, tensor?: string) =>
    new ModelFormatError(code, `${where}: ${message}`, tensor);

  if (source.size < 8) {
    throw fail('truncated_file', `only ${source.size} bytes; a safetensors file starts with an 8-byte header length`);
  }
  const lengthBytes = new Uint8Array(8);
  source.read(0, lengthBytes);
  const claimed = new DataView(lengthBytes.buffer).getBigUint64(0, true);
  // Checked before anything is allocated, so a garbage length cannot make us allocate gigabytes.
  if (claimed > BigInt(source.size - 8)) {
    throw fail(
      'bad_header_length',
      `header length ${claimed} is beyond the end of the file (${source.size} bytes): truncated, or not safetensors`,
    );
  }
  const headerLength = Number(claimed);
  if (headerLength > MAX_HEADER_BYTES) {
    throw fail('bad_header_length', `header of ${headerLength} bytes is larger than the ${MAX_HEADER_BYTES} allowed`);
  }
  const headerBytes = new Uint8Array(headerLength);
  source.read(8, headerBytes);

  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(headerBytes));
  } catch (cause) {
    throw fail('invalid_header', `header is not valid JSON (${(cause as Error).message})`);
  }
  if (!isPlainObject(header)) throw fail('invalid_header', 'header is not a JSON object');

  const dataStart = 8 + headerLength;
  const dataSize = source.size - dataStart;
  const metadata: Record<string, string> = {};
  const tensors = new Map<string, SafetensorsTensorInfo>();
  const spans: { name: string; begin: number; end: number }[] = [];

  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') {
      if (!isPlainObject(entry)) throw fail('invalid_header', '__metadata__ is not an object');
      for (const [key, value] of Object.entries(entry)) {
        if (typeof value !== 'string') throw fail('invalid_header', `__metadata__ value '${key}' is not a string`);
        metadata[key] = value;
      }
      continue;
    }
    if (!isPlainObject(entry)) throw fail('invalid_header', `entry for tensor '${name}' is not an object`, name);
    const { dtype, shape, data_offsets: offsets } = entry;
    if (typeof dtype !== 'string') throw fail('invalid_header', `tensor '${name}' has no dtype`, name);
    if (!Object.hasOwn(DTYPE_BYTES, dtype)) throw fail('unknown_dtype', `tensor '${name}' has unknown dtype '${dtype}'`, name);
    if (!Array.isArray(shape) || !shape.every(isCount)) {
      throw fail('invalid_header', `tensor '${name}' has an invalid shape ${JSON.stringify(shape)}`, name);
    }
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isCount) || offsets[0] > offsets[1]) {
      throw fail('bad_offsets', `tensor '${name}' has invalid data_offsets ${JSON.stringify(offsets)}`, name);
    }
    const [begin, end] = offsets as [number, number];
    const elements = (shape as number[]).reduce((a, b) => a * b, 1);
    const expectedBytes = elements * DTYPE_BYTES[dtype];
    if (expectedBytes !== end - begin) {
      throw fail(
        'size_mismatch',
        `tensor '${name}' (${dtype} [${shape.join(', ')}]) needs ${expectedBytes} bytes but data_offsets give ${end - begin}`,
        name,
      );
    }
    tensors.set(name, { name, dtype, shape: shape as number[], byteOffset: dataStart + begin, byteLength: end - begin });
    spans.push({ name, begin, end });
  }

  // The format requires the tensors to tile the data section exactly: no overlaps, no gaps, nothing after.
  spans.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let covered = 0;
  let previous: string | null = null;
  let firstGap: { name: string; bytes: number } | null = null;
  for (const span of spans) {
    if (span.begin < covered) {
      throw fail(
        'overlapping_tensors',
        `tensors '${previous}' and '${span.name}' overlap (byte ${span.begin} of the data section)`,
        span.name,
      );
    }
    if (span.begin > covered) firstGap ??= { name: span.name, bytes: span.begin - covered };
    covered = span.end;
    previous = span.name;
  }
  if (covered > dataSize && firstGap === null) {
    // Consistent offsets that run past the end: the file was cut short (an interrupted download or copy).
    throw fail(
      'truncated_file',
      `file is truncated: its tensors need ${covered} bytes of data but only ${dataSize} are present (tensor '${previous}' is cut off)`,
      previous ?? undefined,
    );
  }
  const outOfRange = spans.find((span) => span.end > dataSize);
  if (outOfRange) {
    throw fail(
      'bad_offsets',
      `tensor '${outOfRange.name}' data_offsets [${outOfRange.begin}, ${outOfRange.end}] are out of range: the data section has ${dataSize} bytes`,
      outOfRange.name,
    );
  }
  if (firstGap) throw fail('bad_offsets', `gap of ${firstGap.bytes} bytes before tensor '${firstGap.name}'`, firstGap.name);
  if (covered !== dataSize) {
    throw fail('bad_offsets', `${dataSize - covered} bytes after the last tensor are not part of any tensor`);
  }
  return { metadata, tensors };
}

export interface TensorToWrite {
  dtype: 'F32' | 'F16';
  shape: number[];
  data: Float32Array;
}

/**
 * Writes tensors (in the object's order) to a safetensors file. The file appears only when complete:
 * it is written next to `path` and renamed, so a crash never leaves a half-written checkpoint.
 */
export async function writeSafetensors(
  path: string,
  tensors: Record<string, TensorToWrite>,
  metadata?: Record<string, string>,
): Promise<void> {
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  let offset = 0;
  for (const [name, tensor] of Object.entries(tensors)) {
    if (name === '__metadata__') throw new Error(`safetensors: '__metadata__' cannot be a tensor name`);
    const elements = tensor.shape.reduce((a, b) => a * b, 1);
    if (!tensor.shape.every(isCount) || elements !== tensor.data.length) {
      throw new Error(
        `safetensors: tensor '${name}' has ${tensor.data.length} values but shape [${tensor.shape.join(', ')}]`,
      );
    }
    if (tensor.dtype !== 'F32' && tensor.dtype !== 'F16') {
      throw new Error(`safetensors: cannot write tensor '${name}' as ${String(tensor.dtype)}`);
    }
    const bytes = elements * DTYPE_BYTES[tensor.dtype];
    header[name] = { dtype: tensor.dtype, shape: tensor.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (Buffer.byteLength(json) % 8)) % 8); // keeps the data section 8-byte aligned
  const headerBytes = Buffer.from(json, 'utf8');
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(headerBytes.length));

  const partial = `${path}.partial`;
  const file = await open(partial, 'w');
  let position = 0;
  const writeAll = async (bytes: Uint8Array) => {
    for (let done = 0; done < bytes.length; ) {
      const { bytesWritten } = await file.write(bytes, done, Math.min(bytes.length - done, MAX_READ_BYTES), position);
      done += bytesWritten;
      position += bytesWritten;
    }
  };
  try {
    await writeAll(prefix);
    await writeAll(headerBytes);
    for (const tensor of Object.values(tensors)) {
      const values = tensor.dtype === 'F32' ? tensor.data : float32ToFloat16(tensor.data);
      await writeAll(new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
    }
    await file.sync();
  } catch (error) {
    await file.close();
    await rm(partial, { force: true });
    throw error;
  }
  await file.close();
  await rename(partial, path);
}
