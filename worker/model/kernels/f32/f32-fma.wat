;; The prompt path of f32.wat's gemm_nn (more than 4 rows) with fused multiply-add: relaxed SIMD's
;; f32x4.relaxed_madd, one instruction and one rounding where f32.wat needs a multiply and an add. Prompts are
;; bound by arithmetic, and this measured ~1.3x faster (docs/performance-log.md, section 6). Relaxed SIMD is on
;; in Electron; Node 20 needs --experimental-wasm-relaxed-simd (f32.ts sets it, and uses f32.wasm alone where
;; this module does not validate). The results differ from f32.wat's by float32 rounding only.
;;
;;   gemm_panels: out[r*ldo + j] = bias[j] + sum_i x[r*ldx + i] * w[i*ldw + j]    r < rows, j < n, i < k
;; with bias 0 for none, strides counting floats, pointers as byte offsets; `panel` holds
;; k * (64 + 4 * ceil(rows / 4)) floats (f32.ts: f32ScratchFloats).
;; x is first copied into blocks of 4 rows, each [k][4] (after the panels, at panel + 64k floats), so that
;; the inner loop reads a step's 4 inputs at one pointer with constant offsets: V8 then spends no address
;; arithmetic per row (~22 instructions per 8 multiply-adds instead of ~26; 5-15 % faster, interleaved runs).
;; Up to eight 8-column panels of w at a time are copied into `panel`, then each is multiplied by every block;
;; the last n % 8 columns are done one at a time.
;;
;; Built with `node scripts/build-kernels.mjs` (wabt, relaxed SIMD enabled) into f32-fma.wasm beside this
;; file, and into f32-fma.shared.wasm importing a shared memory (for the partner thread's arena):
;; build: also shared
(module
  (import "env" "memory" (memory 1))

  ;; Pointer to row min(index, rows - 1) of a matrix with the given byte stride.
  (func $row_at (param $base i32) (param $index i32) (param $rows i32) (param $stride i32) (result i32)
    (i32.add (local.get $base)
      (i32.mul (local.get $stride)
        (select (local.get $index) (i32.sub (local.get $rows) (i32.const 1))
          (i32.lt_u (local.get $index) (local.get $rows))))))

  (func (export "gemm_panels") (param $x i32) (param $rows i32) (param $k i32) (param $ldx i32)
        (param $w i32) (param $n i32) (param $ldw i32) (param $bias i32) (param $out i32) (param $ldo i32) (param $panel i32)
    (local $r i32) (local $j i32) (local $end i32) (local $end8 i32) (local $left i32) (local $i i32) (local $f f32)
    (local $packed i32) (local $count i32) (local $q i32)
    (local.set $ldx (i32.shl (local.get $ldx) (i32.const 2)))
    (local.set $ldw (i32.shl (local.get $ldw) (i32.const 2)))
    (local.set $ldo (i32.shl (local.get $ldo) (i32.const 2)))
    (local.set $end (i32.shl (local.get $n) (i32.const 2)))
    (local.set $end8 (i32.and (local.get $end) (i32.const -32)))
    (local.set $packed (i32.add (local.get $panel) (i32.shl (local.get $k) (i32.const 8))))
    (call $pack_rows (local.get $x) (local.get $rows) (local.get $k) (local.get $ldx) (local.get $packed))
    ;; Eight panels at a time while they fit (four whole 64-byte lines of each row of w: reading a matrix that
    ;; lies in main memory row by row at a stride is bound by its misses, and more lines a row keep more of them
    ;; in flight; packing took ~30 % less time than two panels at a time), then two (one line), then one.
    (block $panels_done (loop $panels
      (br_if $panels_done (i32.ge_u (local.get $j) (local.get $end8)))
      (local.set $count
        (if (result i32) (i32.le_u (i32.add (local.get $j) (i32.const 256)) (local.get $end8))
          (then (call $pack64 (i32.add (local.get $w) (local.get $j)) (local.get $k) (local.get $ldw) (local.get $panel)) (i32.const 8))
          (else (if (result i32) (i32.le_u (i32.add (local.get $j) (i32.const 64)) (local.get $end8))
            (then
              (call $pack16 (i32.add (local.get $w) (local.get $j)) (local.get $k) (local.get $ldw) (local.get $panel)
                (i32.add (local.get $panel) (i32.shl (local.get $k) (i32.const 5))))
              (i32.const 2))
            (else (call $pack8 (i32.add (local.get $w) (local.get $j)) (local.get $k) (local.get $ldw) (local.get $panel)) (i32.const 1))))))
      ;; Panel q of the pass lies at panel + q * 32k bytes and feeds the pass's columns 8q to 8q + 7.
      (local.set $q (i32.const 0))
      (loop $each_panel
        (call $panel_rows (local.get $packed) (local.get $rows) (local.get $k) (local.get $ldx)
          (i32.add (local.get $panel) (i32.mul (local.get $q) (i32.shl (local.get $k) (i32.const 5))))
          (select (i32.add (local.get $bias) (local.get $j)) (i32.const 0) (local.get $bias))
          (i32.add (local.get $out) (local.get $j)) (local.get $ldo))
        (local.set $j (i32.add (local.get $j) (i32.const 32)))
        (local.set $q (i32.add (local.get $q) (i32.const 1)))
        (br_if $each_panel (i32.lt_u (local.get $q) (local.get $count))))
      (br $panels)))
    ;; The last n % 8 columns, one output at a time.
    (block $cols_done (loop $cols
      (br_if $cols_done (i32.ge_u (local.get $j) (local.get $end)))
      (local.set $r (i32.const 0))
      (loop $each_row
        (local.set $f
          (if (result f32) (local.get $bias)
            (then (f32.load (i32.add (local.get $bias) (local.get $j))))
            (else (f32.const 0))))
        (local.set $i (i32.const 0))
        (loop $inner
          (local.set $f (f32.add (local.get $f)
            (f32.mul
              (f32.load (i32.add (i32.add (local.get $x) (i32.mul (local.get $r) (local.get $ldx))) (i32.shl (local.get $i) (i32.const 2))))
              (f32.load (i32.add (i32.add (local.get $w) (local.get $j)) (i32.mul (local.get $i) (local.get $ldw)))))))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br_if $inner (i32.lt_u (local.get $i) (local.get $k))))
        (f32.store (i32.add (i32.add (local.get $out) (i32.mul (local.get $r) (local.get $ldo))) (local.get $j)) (local.get $f))
        (local.set $r (i32.add (local.get $r) (i32.const 1)))
        (br_if $each_row (i32.lt_u (local.get $r) (local.get $rows))))
      (local.set $j (i32.add (local.get $j) (i32.const 4)))
      (br $cols))))

  ;; All rows, in their packed blocks of 4, times one packed 8-column panel; out and bias already point at its columns.
  (func $panel_rows (param $packed i32) (param $rows i32) (param $k i32) (param $ldx i32) (param $panel i32)
        (param $bias i32) (param $out i32) (param $ldo i32)
    (local $r i32) (local $left i32) (local $block i32)
    (local.set $block (i32.shl (local.get $k) (i32.const 4)))
    (loop $blocks
      (local.set $left (i32.sub (local.get $rows) (local.get $r)))
      (call $tile4x8
        (local.get $packed)
        (select (local.get $left) (i32.const 4) (i32.lt_u (local.get $left) (i32.const 4)))
        (local.get $k) (local.get $panel) (local.get $bias)
        (i32.add (local.get $out) (i32.mul (local.get $r) (local.get $ldo))) (local.get $ldo))
      (local.set $packed (i32.add (local.get $packed) (local.get $block)))
      (local.set $r (i32.add (local.get $r) (i32.const 4)))
      (br_if $blocks (i32.lt_u (local.get $r) (local.get $rows)))))

  ;; x [rows, k] (rows ldx bytes apart) into blocks of 4 rows, block b = [k][4] at packed + b * 16k bytes. The
  ;; last block's missing rows repeat the last row, as the tiles' clamped rows do (their outputs coincide).
  (func $pack_rows (param $x i32) (param $rows i32) (param $k i32) (param $ldx i32) (param $packed i32)
    (local $r i32) (local $padded i32) (local $src i32) (local $dst i32) (local $end i32)
    (local.set $padded (i32.and (i32.add (local.get $rows) (i32.const 3)) (i32.const -4)))
    (loop $each_row
      (local.set $src (call $row_at (local.get $x) (local.get $r) (local.get $rows) (local.get $ldx)))
      (local.set $dst (i32.add (local.get $packed)
        (i32.add (i32.mul (i32.shr_u (local.get $r) (i32.const 2)) (i32.shl (local.get $k) (i32.const 4)))
                 (i32.shl (i32.and (local.get $r) (i32.const 3)) (i32.const 2)))))
      (local.set $end (i32.add (local.get $dst) (i32.shl (local.get $k) (i32.const 4))))
      (loop $each
        (f32.store (local.get $dst) (f32.load (local.get $src)))
        (local.set $src (i32.add (local.get $src) (i32.const 4)))
        (local.set $dst (i32.add (local.get $dst) (i32.const 16)))
        (br_if $each (i32.lt_u (local.get $dst) (local.get $end))))
      (local.set $r (i32.add (local.get $r) (i32.const 1)))
      (br_if $each_row (i32.lt_u (local.get $r) (local.get $padded)))))

  ;; Eight 8-column panels from 64 columns of w (four whole 64-byte lines a row): panel q of them at
  ;; a + q * 32k bytes.
  (func $pack64 (param $w i32) (param $k i32) (param $ldw i32) (param $a i32)
    (local $end i32) (local $q i32)
    (local.set $q (i32.shl (local.get $k) (i32.const 5)))
    (local.set $end (i32.add (local.get $a) (local.get $q)))
    (loop $copy
      (v128.store (local.get $a) (v128.load (local.get $w)))
      (v128.store offset=16 (local.get $a) (v128.load offset=16 (local.get $w)))
      (v128.store (i32.add (local.get $a) (local.get $q)) (v128.load offset=32 (local.get $w)))
      (v128.store offset=16 (i32.add (local.get $a) (local.get $q)) (v128.load offset=48 (local.get $w)))
      (v128.store (i32.add (local.get $a) (i32.mul (local.get $q) (i32.const 2))) (v128.load offset=64 (local.get $w)))
      (v128.store offset=16 (i32.add (local.get $a) (i32.mul (local.get $q) (i32.const 2))) (v128.load offset=80 (local.get $w)))
      (v128.store (i32.add (local.get $a) (i32.mul (local.get $q) (i32.const 3))) (v128.load offset=96 (local.get $w)))
      (v128.store offset=16 (i32.add (local.get $a) (i32.mul (local.get $q) (i32.const 3))) (v128.load offset=112 (local.get $w)))
      (v128.store (i32.add (local.get $a) (i32.mul (local.get $q) (i32.const 4))) (v128.load offset=128 (local.get $w)))
      (v128.store offset=16 (i32.add (local.get $a) (i32.mul (local.get $q) (i32.const 4))) (v128.load offset=144 (local.get $w)))
      (v128.store (i32.add (local.get $a) (i32.mul (local.get $q) (i32.const 5))) (v128.load offset=160 (local.get $w)))
      (v128.store offset=16 (i32.add (local.get $a) (i32.mul (local.get $q) (i32.const 5))) (v128.load offset=176 (local.get $w)))
      (v128.store (i32.add (local.get $a) (i32.mul (local.get $q) (i32.const 6))) (v128.load offset=192 (local.get $w)))
      (v128.store offset=16 (i32.add (local.get $a) (i32.mul (local.get $q) (i32.const 6))) (v128.load offset=208 (local.get $w)))
      (v128.store (i32.add (local.get $a) (i32.mul (local.get $q) (i32.const 7))) (v128.load offset=224 (local.get $w)))
      (v128.store offset=16 (i32.add (local.get $a) (i32.mul (local.get $q) (i32.const 7))) (v128.load offset=240 (local.get $w)))
      (local.set $w (i32.add (local.get $w) (local.get $ldw)))
      (local.set $a (i32.add (local.get $a) (i32.const 32)))
      (br_if $copy (i32.lt_u (local.get $a) (local.get $end)))))

  ;; Two 8-column panels (columns 0..8 into a, 8..16 into b) from 16 columns of w: whole 64-byte lines.
  (func $pack16 (param $w i32) (param $k i32) (param $ldw i32) (param $a i32) (param $b i32)
    (local $end i32)
    (local.set $end (i32.add (local.get $a) (i32.shl (local.get $k) (i32.const 5))))
    (loop $copy
      (v128.store (local.get $a) (v128.load (local.get $w)))
      (v128.store offset=16 (local.get $a) (v128.load offset=16 (local.get $w)))
      (v128.store (local.get $b) (v128.load offset=32 (local.get $w)))
      (v128.store offset=16 (local.get $b) (v128.load offset=48 (local.get $w)))
      (local.set $w (i32.add (local.get $w) (local.get $ldw)))
      (local.set $a (i32.add (local.get $a) (i32.const 32)))
      (local.set $b (i32.add (local.get $b) (i32.const 32)))
      (br_if $copy (i32.lt_u (local.get $a) (local.get $end)))))

  ;; panel[i*8 + c] = w[i*ldw + c] for c < 8: 8 columns of w, contiguous. ldw in bytes.
  (func $pack8 (param $w i32) (param $k i32) (param $ldw i32) (param $panel i32)
    (local $end i32)
    (local.set $end (i32.add (local.get $panel) (i32.shl (local.get $k) (i32.const 5))))
    (loop $copy
      (v128.store (local.get $panel) (v128.load (local.get $w)))
      (v128.store offset=16 (local.get $panel) (v128.load offset=16 (local.get $w)))
      (local.set $w (i32.add (local.get $w) (local.get $ldw)))
      (local.set $panel (i32.add (local.get $panel) (i32.const 32)))
      (br_if $copy (i32.lt_u (local.get $panel) (local.get $end)))))

  ;; A packed block of 4 rows ([k][4]) times a packed 8-column panel: out[r, 0..8) = bias[0..8) + x[r] . panel
  ;; for r < nr (the block's rows past nr repeat its last one, and are written onto it).
  (func $tile4x8 (param $x i32) (param $nr i32) (param $k i32) (param $panel i32)
        (param $bias i32) (param $out i32) (param $ldo i32)
    (local $o1 i32) (local $o2 i32) (local $o3 i32) (local $p i32) (local $end i32)
    (local $a00 v128) (local $a01 v128) (local $a10 v128) (local $a11 v128)
    (local $a20 v128) (local $a21 v128) (local $a30 v128) (local $a31 v128)
    (local $w0 v128) (local $w1 v128) (local $s v128)
    ;; Rows past nr write onto the last one ($row_at's rule, spelled out: a call per row cost ~30 ns a tile,
    ;; ~4 % of a one-thread prefill, which runs ~400k tiles).
    (local.set $nr (i32.sub (local.get $nr) (i32.const 1)))
    (local.set $o1 (i32.add (local.get $out) (i32.mul (local.get $ldo) (select (i32.const 1) (local.get $nr) (i32.gt_u (local.get $nr) (i32.const 1))))))
    (local.set $o2 (i32.add (local.get $out) (i32.mul (local.get $ldo) (select (i32.const 2) (local.get $nr) (i32.gt_u (local.get $nr) (i32.const 2))))))
    (local.set $o3 (i32.add (local.get $out) (i32.mul (local.get $ldo) (select (i32.const 3) (local.get $nr) (i32.gt_u (local.get $nr) (i32.const 3))))))
    (if (local.get $bias)
      (then
        (local.set $a00 (v128.load (local.get $bias)))
        (local.set $a01 (v128.load offset=16 (local.get $bias)))))
    (local.set $a10 (local.get $a00)) (local.set $a11 (local.get $a01))
    (local.set $a20 (local.get $a00)) (local.set $a21 (local.get $a01))
    (local.set $a30 (local.get $a00)) (local.set $a31 (local.get $a01))
    (local.set $p (local.get $panel))
    (local.set $end (i32.add (local.get $panel) (i32.shl (local.get $k) (i32.const 5))))
    (loop $inner
      (local.set $w0 (v128.load (local.get $p)))
      (local.set $w1 (v128.load offset=16 (local.get $p)))
      (local.set $s (v128.load32_splat (local.get $x)))
      (local.set $a00 (f32x4.relaxed_madd (local.get $s) (local.get $w0) (local.get $a00)))
      (local.set $a01 (f32x4.relaxed_madd (local.get $s) (local.get $w1) (local.get $a01)))
      (local.set $s (v128.load32_splat offset=4 (local.get $x)))
      (local.set $a10 (f32x4.relaxed_madd (local.get $s) (local.get $w0) (local.get $a10)))
      (local.set $a11 (f32x4.relaxed_madd (local.get $s) (local.get $w1) (local.get $a11)))
      (local.set $s (v128.load32_splat offset=8 (local.get $x)))
      (local.set $a20 (f32x4.relaxed_madd (local.get $s) (local.get $w0) (local.get $a20)))
      (local.set $a21 (f32x4.relaxed_madd (local.get $s) (local.get $w1) (local.get $a21)))
      (local.set $s (v128.load32_splat offset=12 (local.get $x)))
      (local.set $a30 (f32x4.relaxed_madd (local.get $s) (local.get $w0) (local.get $a30)))
      (local.set $a31 (f32x4.relaxed_madd (local.get $s) (local.get $w1) (local.get $a31)))
      (local.set $p (i32.add (local.get $p) (i32.const 32)))
      (local.set $x (i32.add (local.get $x) (i32.const 16)))
      (br_if $inner (i32.lt_u (local.get $p) (local.get $end))))
    (v128.store (local.get $out) (local.get $a00))
    (v128.store offset=16 (local.get $out) (local.get $a01))
    (v128.store (local.get $o1) (local.get $a10))
    (v128.store offset=16 (local.get $o1) (local.get $a11))
    (v128.store (local.get $o2) (local.get $a20))
    (v128.store offset=16 (local.get $o2) (local.get $a21))
    (v128.store (local.get $o3) (local.get $a30))
    (v128.store offset=16 (local.get $o3) (local.get $a31)))
)
