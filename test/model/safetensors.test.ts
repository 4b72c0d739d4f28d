import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ModelFormatError, type ModelFormatErrorCode } from '../../worker/model/errors.js';
import {
  SafetensorsReader,
  bfloat16ToFloat32,
  float16ToFloat32,
  float32ToFloat16,
  writeSafetensors,
} from '../../worker/model/safetensors.js';
import { tempDir, tinyGpt2, tinyGpt2F16 } from './helpers.js';

/** A safetensors buffer from a header (object or raw text) and data bytes. */
function build(header: unknown, data: Uint8Array = new Uint8Array(0), claimedLength?: bigint): Buffer {
  const json = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header), 'utf8');
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(claimedLength ?? BigInt(json.length));
  return Buffer.concat([prefix, json, data]);
}

function expectError(open: () => unknown, code: ModelFormatErrorCode, mentions: RegExp): void {
  assert.throws(open, (error: unknown) => {
    assert.ok(error instanceof ModelFormatError, `expected a ModelFormatError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    assert.match(error.message, mentions);
    return true;
  });
}

const fromBuffer = (b: Uint8Array) => () => SafetensorsReader.fromBuffer(b, 'test.safetensors');

test('reads the F32 fixture: names, shapes, values', () => {
  const reader = SafetensorsReader.open(path.join(tinyGpt2, 'model.safetensors'));
  assert.deepEqual(reader.info('wte.weight').shape, [50257, 32]);
  assert.deepEqual(reader.info('h.1.attn.c_attn.weight').shape, [32, 96]);
  assert.equal(reader.info('h.1.mlp.c_fc.bias').dtype, 'F32');
  assert.equal(reader.tensors.size, 4 + 2 * 12);
  const wpe = reader.readFloat32('wpe.weight');
  assert.equal(wpe.length, 64 * 32);
  // The same bytes read straight from the file.
  const raw = readFileSync(path.join(tinyGpt2, 'model.safetensors'));
  const info = reader.info('wpe.weight');
  assert.deepEqual(new Float32Array(raw.buffer.slice(raw.byteOffset + info.byteOffset, raw.byteOffset + info.byteOffset + info.byteLength)), wpe);
  assert.deepEqual(SafetensorsReader.fromBuffer(raw).readFloat32('wpe.weight'), wpe);
  reader.close();
});

test('reads the F16 fixture exactly, subnormals and −0 included; the writer reproduces its bytes', () => {
  const f32 = SafetensorsReader.open(path.join(tinyGpt2, 'model.safetensors'));
  const f16 = SafetensorsReader.open(path.join(tinyGpt2F16, 'model.safetensors'));
  let subnormals = 0;
  let negativeZeros = 0;
  for (const [name, info] of f16.tensors) {
    assert.equal(info.dtype, 'F16');
    const bits = new Uint16Array(f16.readBytes(name).buffer);
    const values = f16.readFloat32(name);
    for (let i = 0; i < bits.length; i++) {
      if ((bits[i] & 0x7c00) === 0 && (bits[i] & 0x3ff) !== 0) {
        subnormals++;
        assert.notEqual(values[i], 0);
      }
      if (bits[i] === 0x8000) {
        negativeZeros++;
        assert.ok(Object.is(values[i], -0));
      }
    }
    // Rounding the float32 weights to float16 gives the fixture's bytes, bit for bit.
    assert.deepEqual(float32ToFloat16(f32.readFloat32(name)), bits, name);
  }
  assert.equal(subnormals, 4018);
  assert.equal(negativeZeros, 1);
  f32.close();
  f16.close();
});

test('float16 conversion: special values and every bit pattern round-trips', () => {
  const cases: [number, number][] = [
    [0x3c00, 1], [0xc000, -2], [0x7bff, 65504], [0x0001, 2 ** -24], [0x03ff, 1023 * 2 ** -24],
    [0x0400, 2 ** -14], [0x7c00, Infinity], [0xfc00, -Infinity], [0x3555, 0.333251953125],
  ];
  const values = float16ToFloat32(new Uint16Array(cases.map(([bits]) => bits)));
  cases.forEach(([, expected], i) => assert.equal(values[i], expected));
  assert.ok(Number.isNaN(float16ToFloat32(new Uint16Array([0x7e00]))[0]));

  const all = new Uint16Array(65536).map((_, i) => i);
  const back = float32ToFloat16(float16ToFloat32(all));
  for (let h = 0; h < 65536; h++) {
    const isNaN = (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0;
    if (isNaN) assert.ok((back[h] & 0x7c00) === 0x7c00 && (back[h] & 0x3ff) !== 0);
    else assert.equal(back[h], h, `bit pattern ${h.toString(16)}`);
  }
});

test('float32 → float16 rounds to nearest, ties to even, overflow to infinity', () => {
  const cases: [number, number][] = [
    [65519, 0x7bff], [65520, 0x7c00], [1e10, 0x7c00], [-1e10, 0xfc00],
    [2 ** -25, 0x0000], [1.5 * 2 ** -25, 0x0001], [3 * 2 ** -25, 0x0002], // ties to even (0 and 2)
    [1 + 2 ** -11, 0x3c00], [1 + 3 * 2 ** -11, 0x3c02], [1 + 2 ** -11 + 2 ** -20, 0x3c01],
    [2 ** -30, 0x0000], [-0, 0x8000], [2 ** -14 - 2 ** -25, 0x0400], // rounds up into the normal range
  ];
  const bits = float32ToFloat16(new Float32Array(cases.map(([v]) => v)));
  cases.forEach(([value, expected], i) => assert.equal(bits[i], expected, `${value} → ${bits[i].toString(16)}`));
});

test('bfloat16 conversion is the top half of float32', () => {
  const values = bfloat16ToFloat32(new Uint16Array([0x3f80, 0xc000, 0x7f80, 0x0001, 0x8000]));
  assert.deepEqual([...values.slice(0, 3)], [1, -2, Infinity]);
  assert.equal(values[3], new Float32Array(new Uint32Array([0x00010000]).buffer)[0]);
  assert.ok(Object.is(values[4], -0));
  const reader = SafetensorsReader.fromBuffer(
    build({ x: { dtype: 'BF16', shape: [2], data_offsets: [0, 4] } }, new Uint8Array([0x80, 0x3f, 0x40, 0xc0])),
  );
  assert.deepEqual([...reader.readFloat32('x')], [1, -3]);
});

test('writeSafetensors round-trips F32 and F16 with metadata, aligned, leaving no partial file', async () => {
  const dir = tempDir('st-write');
  const file = path.join(dir, 'out.safetensors');
  const a = new Float32Array([1.5, -2, 3.25, 0, 1e-3, 7]);
  const b = new Float32Array([0.1, 65504, -1e-7]);
  await writeSafetensors(file, { a: { dtype: 'F32', shape: [2, 3], data: a }, b: { dtype: 'F16', shape: [3], data: b } }, { format: 'pt' });
  const bytes = readFileSync(file);
  assert.equal(Number(bytes.readBigUInt64LE(0)) % 8, 0);
  const reader = SafetensorsReader.open(file);
  assert.deepEqual(reader.metadata, { format: 'pt' });
  assert.deepEqual(reader.readFloat32('a'), a);
  assert.deepEqual(reader.info('b'), { name: 'b', dtype: 'F16', shape: [3], byteOffset: reader.info('a').byteOffset + 24, byteLength: 6 });
  assert.deepEqual(reader.readFloat32('b'), float16ToFloat32(float32ToFloat16(b)));
  reader.close();
  assert.deepEqual(readdirSync(dir), ['out.safetensors']);
  await assert.rejects(writeSafetensors(file, { c: { dtype: 'F32', shape: [4], data: a } }), /6 values but shape \[4\]/);
  assert.ok(!existsSync(`${file}.partial`));
});

const ok = { x: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } };
const eightBytes = new Uint8Array(8);

test('a file too short for the header length', () => {
  expectError(fromBuffer(new Uint8Array(5)), 'truncated_file', /only 5 bytes/);
  expectError(fromBuffer(new Uint8Array(0)), 'truncated_file', /only 0 bytes/);
});

test('a header length beyond the file, even a huge one, fails at once without allocating it', () => {
  expectError(fromBuffer(build(ok, eightBytes, 1000n)), 'bad_header_length', /beyond the end of the file/);
  expectError(fromBuffer(build(ok, eightBytes, 1n << 30n)), 'bad_header_length', /1073741824/);
  expectError(fromBuffer(build(ok, eightBytes, (1n << 64n) - 1n)), 'bad_header_length', /beyond the end/);
});

test('a header that is not JSON, not an object, or not UTF-8', () => {
  expectError(fromBuffer(build('{"x": ', eightBytes)), 'invalid_header', /not valid JSON/);
  expectError(fromBuffer(build('[1, 2]')), 'invalid_header', /not a JSON object/);
  const badUtf8 = build('{"\xff": 1}');
  badUtf8[10] = 0xff;
  expectError(fromBuffer(badUtf8), 'invalid_header', /not valid JSON/);
  expectError(fromBuffer(build({ __metadata__: { n: 1 } })), 'invalid_header', /__metadata__ value 'n'/);
  expectError(fromBuffer(build({ x: 3 })), 'invalid_header', /tensor 'x'/);
  expectError(fromBuffer(build({ x: { dtype: 'F32', shape: [-2], data_offsets: [0, 8] } }, eightBytes)), 'invalid_header', /'x' has an invalid shape/);
  expectError(fromBuffer(build({ x: { dtype: 'F32', shape: [2], data_offsets: [8, 0] } }, eightBytes)), 'bad_offsets', /'x' has invalid data_offsets/);
});

test('an unknown dtype names the tensor', () => {
  expectError(fromBuffer(build({ w: { dtype: 'F12', shape: [2], data_offsets: [0, 8] } }, eightBytes)), 'unknown_dtype', /'w' has unknown dtype 'F12'/);
});

test('offsets that do not match shape × dtype', () => {
  expectError(
    fromBuffer(build({ w: { dtype: 'F16', shape: [2, 3], data_offsets: [0, 8] } }, eightBytes)),
    'size_mismatch',
    /'w' \(F16 \[2, 3\]\) needs 12 bytes but data_offsets give 8/,
  );
});

test('offsets out of range, overlapping, with gaps, or leaving bytes over', () => {
  const two = (first: number[], second: number[], bytes = 16) =>
    build({ a: { dtype: 'F32', shape: [2], data_offsets: first }, b: { dtype: 'F32', shape: [2], data_offsets: second } }, new Uint8Array(bytes));
  expectError(fromBuffer(two([0, 8], [40, 48])), 'bad_offsets', /'b' data_offsets \[40, 48\] are out of range: the data section has 16 bytes/);
  expectError(fromBuffer(two([0, 8], [4, 12])), 'overlapping_tensors', /'a' and 'b' overlap/);
  expectError(fromBuffer(two([0, 8], [12, 20], 20)), 'bad_offsets', /gap of 4 bytes before tensor 'b'/);
  expectError(fromBuffer(two([0, 8], [8, 16], 24)), 'bad_offsets', /8 bytes after the last tensor/);
  assert.equal(SafetensorsReader.fromBuffer(two([8, 16], [0, 8])).readFloat32('b').length, 2);
});

test('a truncated copy of a real checkpoint', () => {
  const dir = tempDir('st-truncated');
  const whole = readFileSync(path.join(tinyGpt2, 'model.safetensors'));
  const cut = path.join(dir, 'cut.safetensors');
  writeFileSync(cut, whole.subarray(0, Math.floor(whole.length * 0.6)));
  expectError(() => SafetensorsReader.open(cut), 'truncated_file', /truncated: its tensors need 6\d+ bytes .* is cut off/);
  writeFileSync(cut, whole.subarray(0, 300)); // inside the header
  expectError(() => SafetensorsReader.open(cut), 'bad_header_length', /beyond the end of the file \(300 bytes\)/);
  expectError(() => SafetensorsReader.open(path.join(dir, 'absent.safetensors')), 'missing_file', /not found/);
});

test('a tensor that is not floating point cannot be read as weights', () => {
  const reader = SafetensorsReader.fromBuffer(build({ steps: { dtype: 'I64', shape: [1], data_offsets: [0, 8] } }, eightBytes));
  expectError(() => reader.readFloat32('steps'), 'unsupported_dtype', /'steps' has dtype I64/);
  expectError(() => reader.readFloat32('nothing'), 'missing_tensor', /no tensor named 'nothing'/);
});

test('garbage never crashes or hangs: every failure is a ModelFormatError', () => {
  let seed = 12345;
  const random = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
  const valid = build({ __metadata__: { k: 'v' }, a: { dtype: 'F16', shape: [2, 2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [1], data_offsets: [8, 12] } }, new Uint8Array(12));
  const attempts: Uint8Array[] = [];
  for (let i = 0; i < 300; i++) attempts.push(new Uint8Array(Math.floor(random() * 120)).map(() => Math.floor(random() * 256)));
  for (let i = 0; i < 700; i++) {
    const mutated = Uint8Array.from(valid);
    const flips = 1 + Math.floor(random() * 4);
    for (let f = 0; f < flips; f++) mutated[Math.floor(random() * mutated.length)] = Math.floor(random() * 256);
    attempts.push(i % 7 === 0 ? mutated.subarray(0, Math.floor(random() * mutated.length)) : mutated);
  }
  let opened = 0;
  for (const bytes of attempts) {
    try {
      const reader = SafetensorsReader.fromBuffer(bytes);
      opened++;
      for (const name of reader.tensors.keys()) {
        try {
          reader.readFloat32(name);
        } catch (error) {
          assert.ok(error instanceof ModelFormatError, String(error));
        }
      }
    } catch (error) {
      assert.ok(error instanceof ModelFormatError, `${String(error)} for bytes ${Buffer.from(bytes).toString('hex')}`);
    }
  }
  assert.ok(opened > 0 && opened < attempts.length, `${opened} of ${attempts.length} opened`);
});
