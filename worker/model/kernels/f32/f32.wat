;; Float32 matrix products on weights where they already lie: no packed copy of the weights is made (XNNPACK,
;; tfjs's matrix kernel, keeps one of every matrix it multiplies, as large as the matrix). Pointers are byte
;; offsets into the imported memory; strides (ld*) count floats. Sums are float32, k ascending.
;;
;;   gemm_nn: out[r*ldo + j] = bias[j] + sum_i x[r*ldx + i] * w[i*ldw + j]    (w as GPT-2's Conv1D stores it)
;;   gemm_nt: out[r*ldo + j] = bias[j] + sum_i x[r*ldx + i] * w[j*ldw + i]    (w as the tied output layer, wte)
;; for r < rows, j < n, i < k; bias 0 means none. rows, n and k must be at least 1.
;;
;; gemm_nn, by number of rows:
;;   1–4 (decoding, several sequences): w is walked in memory order, a few of its rows per step, into output
;;     rows that stay in L1, so the weights stream from memory once for all input rows (a walk down columns
;;     measured 2–4x slower: every step a new cache line kilobytes away).
;;   more (prompts): each 8-column panel of w is copied into `panel` (k * 8 floats) and multiplied 4 rows at a
;;     time: 8 accumulators, 2 weight vectors and a broadcast fit x86-64's 16 SIMD registers.
;; Every path adds in the same order (bias, then i ascending), so a row's result does not depend on how many
;; rows came with it, and equals XNNPACK's bit for bit. A last block of fewer than 4 rows repeats its last row
;; (the same result written twice to one place) rather than branching.
;; gemm_nt (the output layer): for at most 4 rows, dot products along w's rows, read as a few long streams;
;;   more rows through panels of w transposed 8 rows at a time, as gemm_nn's.
;; gelu_tanh: GPT-2's activation in place (it sits between the two products of every MLP).
;; softmax_row: one row of a decode step's attention weights in place.
;; layer_norm: GPT-2's layer norms, with the residual add before them.
;; add: one array added into another (two threads' partial sums).
;;
;; Built with `node scripts/build-kernels.mjs` (wabt, SIMD enabled) into f32.wasm beside this file, and into
;; f32.shared.wasm importing a shared memory (for the partner thread's arena):
;; build: also shared
(module
  (import "env" "memory" (memory 1))

  (func $hsum (param $v v128) (result f32)
    (f32.add
      (f32.add (f32x4.extract_lane 0 (local.get $v)) (f32x4.extract_lane 1 (local.get $v)))
      (f32.add (f32x4.extract_lane 2 (local.get $v)) (f32x4.extract_lane 3 (local.get $v)))))

  ;; Pointer to row min(index, rows - 1) of a matrix with the given byte stride.
  (func $row_at (param $base i32) (param $index i32) (param $rows i32) (param $stride i32) (result i32)
    (i32.add (local.get $base)
      (i32.mul (local.get $stride)
        (select (local.get $index) (i32.sub (local.get $rows) (i32.const 1))
          (i32.lt_u (local.get $index) (local.get $rows))))))

  ;; gemm_nn for at most 4 rows streams w row by row (the order it lies in memory); more rows go through
  ;; 8-column panels of w copied into `panel` (k * 16 floats: two panels) and multiplied 4 rows at a time.
  (func (export "gemm_nn") (param $x i32) (param $rows i32) (param $k i32) (param $ldx i32)
        (param $w i32) (param $n i32) (param $ldw i32) (param $bias i32) (param $out i32) (param $ldo i32) (param $panel i32)
    (local $r i32) (local $j i32) (local $end i32) (local $end8 i32) (local $i i32) (local $f f32)
    (local.set $ldx (i32.shl (local.get $ldx) (i32.const 2)))
    (local.set $ldw (i32.shl (local.get $ldw) (i32.const 2)))
    (local.set $ldo (i32.shl (local.get $ldo) (i32.const 2)))
    (if (i32.eq (local.get $rows) (i32.const 1))
      (then
        (call $nn_stream_row (local.get $x) (local.get $k) (local.get $w) (local.get $n) (local.get $ldw) (local.get $bias) (local.get $out))
        (return)))
    (if (i32.eq (local.get $rows) (i32.const 3))
      (then
        (call $nn_stream3 (local.get $x) (local.get $k) (local.get $ldx) (local.get $w) (local.get $n)
          (local.get $ldw) (local.get $bias) (local.get $out) (local.get $ldo))
        (return)))
    (if (i32.le_u (local.get $rows) (i32.const 4))
      (then
        (call $nn_stream4 (local.get $x) (local.get $rows) (local.get $k) (local.get $ldx) (local.get $w) (local.get $n)
          (local.get $ldw) (local.get $bias) (local.get $out) (local.get $ldo) (local.get $panel))
        (return)))
    (local.set $end8 (i32.and (i32.shl (local.get $n) (i32.const 2)) (i32.const -32)))
    ;; Two panels from each 64-byte line of w while both fit (one pass over the matrix's lines), then one.
    (block $panels_done (loop $panels
      (br_if $panels_done (i32.ge_u (local.get $j) (local.get $end8)))
      (if (i32.le_u (i32.add (local.get $j) (i32.const 64)) (local.get $end8))
        (then
          (call $pack16 (i32.add (local.get $w) (local.get $j)) (local.get $k) (local.get $ldw) (local.get $panel)
            (i32.add (local.get $panel) (i32.shl (local.get $k) (i32.const 5))))
          (call $panel_rows (local.get $x) (local.get $rows) (local.get $k) (local.get $ldx) (local.get $panel)
            (select (i32.add (local.get $bias) (local.get $j)) (i32.const 0) (local.get $bias))
            (i32.add (local.get $out) (local.get $j)) (local.get $ldo))
          (call $panel_rows (local.get $x) (local.get $rows) (local.get $k) (local.get $ldx)
            (i32.add (local.get $panel) (i32.shl (local.get $k) (i32.const 5)))
            (select (i32.add (local.get $bias) (i32.add (local.get $j) (i32.const 32))) (i32.const 0) (local.get $bias))
            (i32.add (local.get $out) (i32.add (local.get $j) (i32.const 32))) (local.get $ldo))
          (local.set $j (i32.add (local.get $j) (i32.const 64))))
        (else
          (call $pack8 (i32.add (local.get $w) (local.get $j)) (local.get $k) (local.get $ldw) (local.get $panel))
          (call $panel_rows (local.get $x) (local.get $rows) (local.get $k) (local.get $ldx) (local.get $panel)
            (select (i32.add (local.get $bias) (local.get $j)) (i32.const 0) (local.get $bias))
            (i32.add (local.get $out) (local.get $j)) (local.get $ldo))
          (local.set $j (i32.add (local.get $j) (i32.const 32)))))
      (br $panels)))
    ;; The last n % 8 columns, one output at a time (in place; a handful of columns, if any).
    (local.set $end (i32.shl (local.get $n) (i32.const 2)))
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

  ;; One row: out = bias + x . w, walking w's rows in memory order four at a time, out (n floats, in L1)
  ;; updated in place: the weights stream once at memory speed with no packed copy. The additions per output
  ;; are in the same order as the tiled kernels' (bias, then i ascending), so every path gives the same bits.
  (func $nn_stream_row (param $x i32) (param $k i32) (param $w i32) (param $n i32) (param $ldw i32) (param $bias i32) (param $out i32)
    (local $i i32) (local $kb i32) (local $kb4 i32) (local $j i32) (local $end i32) (local $end4 i32)
    (local $w0 i32) (local $w1 i32) (local $w2 i32) (local $w3 i32)
    (local $s0 v128) (local $s1 v128) (local $s2 v128) (local $s3 v128) (local $o v128)
    (local.set $end (i32.shl (local.get $n) (i32.const 2)))
    (local.set $end4 (i32.and (local.get $end) (i32.const -16)))
    (local.set $kb (i32.shl (local.get $k) (i32.const 2)))
    (local.set $kb4 (i32.and (local.get $kb) (i32.const -16)))
    (if (local.get $bias)
      (then (memory.copy (local.get $out) (local.get $bias) (local.get $end)))
      (else (memory.fill (local.get $out) (i32.const 0) (local.get $end))))
    (local.set $w0 (local.get $w))
    (block $rows4_done (loop $rows4
      (br_if $rows4_done (i32.ge_u (local.get $i) (local.get $kb4)))
      (local.set $w1 (i32.add (local.get $w0) (local.get $ldw)))
      (local.set $w2 (i32.add (local.get $w1) (local.get $ldw)))
      (local.set $w3 (i32.add (local.get $w2) (local.get $ldw)))
      (local.set $s0 (v128.load32_splat (i32.add (local.get $x) (local.get $i))))
      (local.set $s1 (v128.load32_splat offset=4 (i32.add (local.get $x) (local.get $i))))
      (local.set $s2 (v128.load32_splat offset=8 (i32.add (local.get $x) (local.get $i))))
      (local.set $s3 (v128.load32_splat offset=12 (i32.add (local.get $x) (local.get $i))))
      (local.set $j (i32.const 0))
      (block $vec_done (loop $vec
        (br_if $vec_done (i32.ge_u (local.get $j) (local.get $end4)))
        (local.set $o (v128.load (i32.add (local.get $out) (local.get $j))))
        (local.set $o (f32x4.add (local.get $o) (f32x4.mul (local.get $s0) (v128.load (i32.add (local.get $w0) (local.get $j))))))
        (local.set $o (f32x4.add (local.get $o) (f32x4.mul (local.get $s1) (v128.load (i32.add (local.get $w1) (local.get $j))))))
        (local.set $o (f32x4.add (local.get $o) (f32x4.mul (local.get $s2) (v128.load (i32.add (local.get $w2) (local.get $j))))))
        (local.set $o (f32x4.add (local.get $o) (f32x4.mul (local.get $s3) (v128.load (i32.add (local.get $w3) (local.get $j))))))
        (v128.store (i32.add (local.get $out) (local.get $j)) (local.get $o))
        (local.set $j (i32.add (local.get $j) (i32.const 16)))
        (br $vec)))
      (block $one_done (loop $one
        (br_if $one_done (i32.ge_u (local.get $j) (local.get $end)))
        (f32.store (i32.add (local.get $out) (local.get $j))
          (f32.add
            (f32.add
              (f32.add
                (f32.add (f32.load (i32.add (local.get $out) (local.get $j)))
                  (f32.mul (f32x4.extract_lane 0 (local.get $s0)) (f32.load (i32.add (local.get $w0) (local.get $j)))))
                (f32.mul (f32x4.extract_lane 0 (local.get $s1)) (f32.load (i32.add (local.get $w1) (local.get $j)))))
              (f32.mul (f32x4.extract_lane 0 (local.get $s2)) (f32.load (i32.add (local.get $w2) (local.get $j)))))
            (f32.mul (f32x4.extract_lane 0 (local.get $s3)) (f32.load (i32.add (local.get $w3) (local.get $j))))))
        (local.set $j (i32.add (local.get $j) (i32.const 4)))
        (br $one)))
      (local.set $w0 (i32.add (local.get $w3) (local.get $ldw)))
      (local.set $i (i32.add (local.get $i) (i32.const 16)))
      (br $rows4)))
    (block $rows_done (loop $rows
      (br_if $rows_done (i32.ge_u (local.get $i) (local.get $kb)))
      (local.set $s0 (v128.load32_splat (i32.add (local.get $x) (local.get $i))))
      (local.set $j (i32.const 0))
      (block $vec_done (loop $vec
        (br_if $vec_done (i32.ge_u (local.get $j) (local.get $end4)))
        (v128.store (i32.add (local.get $out) (local.get $j))
          (f32x4.add (v128.load (i32.add (local.get $out) (local.get $j)))
            (f32x4.mul (local.get $s0) (v128.load (i32.add (local.get $w0) (local.get $j))))))
        (local.set $j (i32.add (local.get $j) (i32.const 16)))
        (br $vec)))
      (block $one_done (loop $one
        (br_if $one_done (i32.ge_u (local.get $j) (local.get $end)))
        (f32.store (i32.add (local.get $out) (local.get $j))
          (f32.add (f32.load (i32.add (local.get $out) (local.get $j)))
            (f32.mul (f32x4.extract_lane 0 (local.get $s0)) (f32.load (i32.add (local.get $w0) (local.get $j))))))
        (local.set $j (i32.add (local.get $j) (i32.const 4)))
        (br $one)))
      (local.set $w0 (i32.add (local.get $w0) (local.get $ldw)))
      (local.set $i (i32.add (local.get $i) (i32.const 4)))
      (br $rows))))

  ;; 2 to 4 rows (nr): as $nn_stream_row, two rows of w per step against every input row, so that w is read
  ;; from memory once for all of them. Rows beyond nr read row 0 and write to `spare` (n floats), unused.
  (func $nn_stream4 (param $x i32) (param $nr i32) (param $k i32) (param $ldx i32) (param $w i32) (param $n i32)
        (param $ldw i32) (param $bias i32) (param $out i32) (param $ldo i32) (param $spare i32)
    (local $x1 i32) (local $x2 i32) (local $x3 i32) (local $o0 i32) (local $o1 i32) (local $o2 i32) (local $o3 i32)
    (local $i i32) (local $kb i32) (local $kb2 i32) (local $j i32) (local $end i32) (local $end4 i32) (local $wa i32) (local $wb i32)
    (local $s00 v128) (local $s01 v128) (local $s10 v128) (local $s11 v128)
    (local $s20 v128) (local $s21 v128) (local $s30 v128) (local $s31 v128)
    (local $va v128) (local $vb v128) (local $fa f32) (local $fb f32)
    (local.set $o0 (local.get $out))
    (local.set $x1 (select (i32.add (local.get $x) (local.get $ldx)) (local.get $x) (i32.gt_u (local.get $nr) (i32.const 1))))
    (local.set $x2 (select (i32.add (local.get $x) (i32.shl (local.get $ldx) (i32.const 1))) (local.get $x) (i32.gt_u (local.get $nr) (i32.const 2))))
    (local.set $x3 (select (i32.add (local.get $x) (i32.mul (local.get $ldx) (i32.const 3))) (local.get $x) (i32.gt_u (local.get $nr) (i32.const 3))))
    (local.set $o1 (select (i32.add (local.get $out) (local.get $ldo)) (local.get $spare) (i32.gt_u (local.get $nr) (i32.const 1))))
    (local.set $o2 (select (i32.add (local.get $out) (i32.shl (local.get $ldo) (i32.const 1))) (local.get $spare) (i32.gt_u (local.get $nr) (i32.const 2))))
    (local.set $o3 (select (i32.add (local.get $out) (i32.mul (local.get $ldo) (i32.const 3))) (local.get $spare) (i32.gt_u (local.get $nr) (i32.const 3))))
    (local.set $end (i32.shl (local.get $n) (i32.const 2)))
    (local.set $end4 (i32.and (local.get $end) (i32.const -16)))
    (local.set $kb (i32.shl (local.get $k) (i32.const 2)))
    (local.set $kb2 (i32.and (local.get $kb) (i32.const -8)))
    (call $start_row (local.get $o0) (local.get $bias) (local.get $end))
    (call $start_row (local.get $o1) (local.get $bias) (local.get $end))
    (call $start_row (local.get $o2) (local.get $bias) (local.get $end))
    (call $start_row (local.get $o3) (local.get $bias) (local.get $end))
    (local.set $wa (local.get $w))
    (loop $rows
      ;; Two rows of w (i, i+1); the last one alone when k is odd.
      (if (i32.lt_u (local.get $i) (local.get $kb2))
        (then
          (local.set $wb (i32.add (local.get $wa) (local.get $ldw)))
          (local.set $s00 (v128.load32_splat (i32.add (local.get $x) (local.get $i))))
          (local.set $s01 (v128.load32_splat offset=4 (i32.add (local.get $x) (local.get $i))))
          (local.set $s10 (v128.load32_splat (i32.add (local.get $x1) (local.get $i))))
          (local.set $s11 (v128.load32_splat offset=4 (i32.add (local.get $x1) (local.get $i))))
          (local.set $s20 (v128.load32_splat (i32.add (local.get $x2) (local.get $i))))
          (local.set $s21 (v128.load32_splat offset=4 (i32.add (local.get $x2) (local.get $i))))
          (local.set $s30 (v128.load32_splat (i32.add (local.get $x3) (local.get $i))))
          (local.set $s31 (v128.load32_splat offset=4 (i32.add (local.get $x3) (local.get $i))))
          (local.set $j (i32.const 0))
          (block $vec_done (loop $vec
            (br_if $vec_done (i32.ge_u (local.get $j) (local.get $end4)))
            (local.set $va (v128.load (i32.add (local.get $wa) (local.get $j))))
            (local.set $vb (v128.load (i32.add (local.get $wb) (local.get $j))))
            (v128.store (i32.add (local.get $o0) (local.get $j))
              (f32x4.add (f32x4.add (v128.load (i32.add (local.get $o0) (local.get $j))) (f32x4.mul (local.get $s00) (local.get $va)))
                (f32x4.mul (local.get $s01) (local.get $vb))))
            (v128.store (i32.add (local.get $o1) (local.get $j))
              (f32x4.add (f32x4.add (v128.load (i32.add (local.get $o1) (local.get $j))) (f32x4.mul (local.get $s10) (local.get $va)))
                (f32x4.mul (local.get $s11) (local.get $vb))))
            (v128.store (i32.add (local.get $o2) (local.get $j))
              (f32x4.add (f32x4.add (v128.load (i32.add (local.get $o2) (local.get $j))) (f32x4.mul (local.get $s20) (local.get $va)))
                (f32x4.mul (local.get $s21) (local.get $vb))))
            (v128.store (i32.add (local.get $o3) (local.get $j))
              (f32x4.add (f32x4.add (v128.load (i32.add (local.get $o3) (local.get $j))) (f32x4.mul (local.get $s30) (local.get $va)))
                (f32x4.mul (local.get $s31) (local.get $vb))))
            (local.set $j (i32.add (local.get $j) (i32.const 16)))
            (br $vec)))
          (block $one_done (loop $one
            (br_if $one_done (i32.ge_u (local.get $j) (local.get $end)))
            (local.set $fa (f32.load (i32.add (local.get $wa) (local.get $j))))
            (local.set $fb (f32.load (i32.add (local.get $wb) (local.get $j))))
            (call $add2 (i32.add (local.get $o0) (local.get $j)) (local.get $s00) (local.get $fa) (local.get $s01) (local.get $fb))
            (call $add2 (i32.add (local.get $o1) (local.get $j)) (local.get $s10) (local.get $fa) (local.get $s11) (local.get $fb))
            (call $add2 (i32.add (local.get $o2) (local.get $j)) (local.get $s20) (local.get $fa) (local.get $s21) (local.get $fb))
            (call $add2 (i32.add (local.get $o3) (local.get $j)) (local.get $s30) (local.get $fa) (local.get $s31) (local.get $fb))
            (local.set $j (i32.add (local.get $j) (i32.const 4)))
            (br $one)))
          (local.set $wa (i32.add (local.get $wb) (local.get $ldw)))
          (local.set $i (i32.add (local.get $i) (i32.const 8))))
        (else
          ;; The last row of w when k is odd.
          (call $axpy_row (local.get $o0) (f32.load (i32.add (local.get $x) (local.get $i))) (local.get $wa) (local.get $end4) (local.get $end))
          (call $axpy_row (local.get $o1) (f32.load (i32.add (local.get $x1) (local.get $i))) (local.get $wa) (local.get $end4) (local.get $end))
          (call $axpy_row (local.get $o2) (f32.load (i32.add (local.get $x2) (local.get $i))) (local.get $wa) (local.get $end4) (local.get $end))
          (call $axpy_row (local.get $o3) (f32.load (i32.add (local.get $x3) (local.get $i))) (local.get $wa) (local.get $end4) (local.get $end))
          (local.set $i (i32.add (local.get $i) (i32.const 4)))))
      (br_if $rows (i32.lt_u (local.get $i) (local.get $kb)))))

  ;; Exactly 3 rows (the three alternatives of a suggestion): three rows of w per step against each input
  ;; row, no spare row computed; 9 broadcasts, 3 weight vectors and a sum stay in registers.
  (func $nn_stream3 (param $x i32) (param $k i32) (param $ldx i32) (param $w i32) (param $n i32)
        (param $ldw i32) (param $bias i32) (param $out i32) (param $ldo i32)
    (local $x1 i32) (local $x2 i32) (local $o1 i32) (local $o2 i32)
    (local $i i32) (local $kb i32) (local $kb3 i32) (local $j i32) (local $end i32) (local $end4 i32)
    (local $wa i32) (local $wb i32) (local $wc i32)
    (local $s00 v128) (local $s01 v128) (local $s02 v128) (local $s10 v128) (local $s11 v128) (local $s12 v128)
    (local $s20 v128) (local $s21 v128) (local $s22 v128) (local $va v128) (local $vb v128) (local $vc v128)
    (local.set $x1 (i32.add (local.get $x) (local.get $ldx)))
    (local.set $x2 (i32.add (local.get $x1) (local.get $ldx)))
    (local.set $o1 (i32.add (local.get $out) (local.get $ldo)))
    (local.set $o2 (i32.add (local.get $o1) (local.get $ldo)))
    (local.set $end (i32.shl (local.get $n) (i32.const 2)))
    (local.set $end4 (i32.and (local.get $end) (i32.const -16)))
    (local.set $kb (i32.shl (local.get $k) (i32.const 2)))
    ;; Bytes of x covered by whole steps of three rows of w.
    (local.set $kb3 (i32.mul (i32.div_u (local.get $k) (i32.const 3)) (i32.const 12)))
    (call $start_row (local.get $out) (local.get $bias) (local.get $end))
    (call $start_row (local.get $o1) (local.get $bias) (local.get $end))
    (call $start_row (local.get $o2) (local.get $bias) (local.get $end))
    (local.set $wa (local.get $w))
    (block $steps_done (loop $steps
      (br_if $steps_done (i32.ge_u (local.get $i) (local.get $kb3)))
      (local.set $wb (i32.add (local.get $wa) (local.get $ldw)))
      (local.set $wc (i32.add (local.get $wb) (local.get $ldw)))
      (local.set $s00 (v128.load32_splat (i32.add (local.get $x) (local.get $i))))
      (local.set $s01 (v128.load32_splat offset=4 (i32.add (local.get $x) (local.get $i))))
      (local.set $s02 (v128.load32_splat offset=8 (i32.add (local.get $x) (local.get $i))))
      (local.set $s10 (v128.load32_splat (i32.add (local.get $x1) (local.get $i))))
      (local.set $s11 (v128.load32_splat offset=4 (i32.add (local.get $x1) (local.get $i))))
      (local.set $s12 (v128.load32_splat offset=8 (i32.add (local.get $x1) (local.get $i))))
      (local.set $s20 (v128.load32_splat (i32.add (local.get $x2) (local.get $i))))
      (local.set $s21 (v128.load32_splat offset=4 (i32.add (local.get $x2) (local.get $i))))
      (local.set $s22 (v128.load32_splat offset=8 (i32.add (local.get $x2) (local.get $i))))
      (local.set $j (i32.const 0))
      (block $vec_done (loop $vec
        (br_if $vec_done (i32.ge_u (local.get $j) (local.get $end4)))
        (local.set $va (v128.load (i32.add (local.get $wa) (local.get $j))))
        (local.set $vb (v128.load (i32.add (local.get $wb) (local.get $j))))
        (local.set $vc (v128.load (i32.add (local.get $wc) (local.get $j))))
        (v128.store (i32.add (local.get $out) (local.get $j))
          (f32x4.add
            (f32x4.add (f32x4.add (v128.load (i32.add (local.get $out) (local.get $j))) (f32x4.mul (local.get $s00) (local.get $va)))
              (f32x4.mul (local.get $s01) (local.get $vb)))
            (f32x4.mul (local.get $s02) (local.get $vc))))
        (v128.store (i32.add (local.get $o1) (local.get $j))
          (f32x4.add
            (f32x4.add (f32x4.add (v128.load (i32.add (local.get $o1) (local.get $j))) (f32x4.mul (local.get $s10) (local.get $va)))
              (f32x4.mul (local.get $s11) (local.get $vb)))
            (f32x4.mul (local.get $s12) (local.get $vc))))
        (v128.store (i32.add (local.get $o2) (local.get $j))
          (f32x4.add
            (f32x4.add (f32x4.add (v128.load (i32.add (local.get $o2) (local.get $j))) (f32x4.mul (local.get $s20) (local.get $va)))
              (f32x4.mul (local.get $s21) (local.get $vb)))
            (f32x4.mul (local.get $s22) (local.get $vc))))
        (local.set $j (i32.add (local.get $j) (i32.const 16)))
        (br $vec)))
      ;; The last n % 4 columns, one row of w at a time (the same order of additions).
      (if (i32.lt_u (local.get $end4) (local.get $end))
        (then
          (call $axpy_tail (local.get $out) (f32x4.extract_lane 0 (local.get $s00)) (local.get $wa) (local.get $end4) (local.get $end))
          (call $axpy_tail (local.get $out) (f32x4.extract_lane 0 (local.get $s01)) (local.get $wb) (local.get $end4) (local.get $end))
          (call $axpy_tail (local.get $out) (f32x4.extract_lane 0 (local.get $s02)) (local.get $wc) (local.get $end4) (local.get $end))
          (call $axpy_tail (local.get $o1) (f32x4.extract_lane 0 (local.get $s10)) (local.get $wa) (local.get $end4) (local.get $end))
          (call $axpy_tail (local.get $o1) (f32x4.extract_lane 0 (local.get $s11)) (local.get $wb) (local.get $end4) (local.get $end))
          (call $axpy_tail (local.get $o1) (f32x4.extract_lane 0 (local.get $s12)) (local.get $wc) (local.get $end4) (local.get $end))
          (call $axpy_tail (local.get $o2) (f32x4.extract_lane 0 (local.get $s20)) (local.get $wa) (local.get $end4) (local.get $end))
          (call $axpy_tail (local.get $o2) (f32x4.extract_lane 0 (local.get $s21)) (local.get $wb) (local.get $end4) (local.get $end))
          (call $axpy_tail (local.get $o2) (f32x4.extract_lane 0 (local.get $s22)) (local.get $wc) (local.get $end4) (local.get $end))))
      (local.set $wa (i32.add (local.get $wc) (local.get $ldw)))
      (local.set $i (i32.add (local.get $i) (i32.const 12)))
      (br $steps)))
    ;; The last k % 3 rows of w.
    (block $rows_done (loop $rows
      (br_if $rows_done (i32.ge_u (local.get $i) (local.get $kb)))
      (call $axpy_row (local.get $out) (f32.load (i32.add (local.get $x) (local.get $i))) (local.get $wa) (local.get $end4) (local.get $end))
      (call $axpy_row (local.get $o1) (f32.load (i32.add (local.get $x1) (local.get $i))) (local.get $wa) (local.get $end4) (local.get $end))
      (call $axpy_row (local.get $o2) (f32.load (i32.add (local.get $x2) (local.get $i))) (local.get $wa) (local.get $end4) (local.get $end))
      (local.set $wa (i32.add (local.get $wa) (local.get $ldw)))
      (local.set $i (i32.add (local.get $i) (i32.const 4)))
      (br $rows))))

  ;; out[j] += a * w[j] for bytes j in [from, end): the scalar tail of a row.
  (func $axpy_tail (param $out i32) (param $a f32) (param $w i32) (param $from i32) (param $end i32)
    (block $done (loop $one
      (br_if $done (i32.ge_u (local.get $from) (local.get $end)))
      (f32.store (i32.add (local.get $out) (local.get $from))
        (f32.add (f32.load (i32.add (local.get $out) (local.get $from))) (f32.mul (local.get $a) (f32.load (i32.add (local.get $w) (local.get $from))))))
      (local.set $from (i32.add (local.get $from) (i32.const 4)))
      (br $one))))

  ;; out[0..n) = bias, or zeros when bias is 0 (end = n * 4).
  (func $start_row (param $out i32) (param $bias i32) (param $end i32)
    (if (local.get $bias)
      (then (memory.copy (local.get $out) (local.get $bias) (local.get $end)))
      (else (memory.fill (local.get $out) (i32.const 0) (local.get $end)))))

  ;; *p = (*p + a * wa) + b * wb, with a and b the lanes of splatted vectors.
  (func $add2 (param $p i32) (param $a v128) (param $wa f32) (param $b v128) (param $wb f32)
    (f32.store (local.get $p)
      (f32.add (f32.add (f32.load (local.get $p)) (f32.mul (f32x4.extract_lane 0 (local.get $a)) (local.get $wa)))
        (f32.mul (f32x4.extract_lane 0 (local.get $b)) (local.get $wb)))))

  ;; out[0..n) += a * w[0..n) (end4, end: bytes of the 4-wide part and of the whole).
  (func $axpy_row (param $out i32) (param $a f32) (param $w i32) (param $end4 i32) (param $end i32)
    (local $j i32) (local $s v128)
    (local.set $s (f32x4.splat (local.get $a)))
    (block $vec_done (loop $vec
      (br_if $vec_done (i32.ge_u (local.get $j) (local.get $end4)))
      (v128.store (i32.add (local.get $out) (local.get $j))
        (f32x4.add (v128.load (i32.add (local.get $out) (local.get $j))) (f32x4.mul (local.get $s) (v128.load (i32.add (local.get $w) (local.get $j))))))
      (local.set $j (i32.add (local.get $j) (i32.const 16)))
      (br $vec)))
    (block $one_done (loop $one
      (br_if $one_done (i32.ge_u (local.get $j) (local.get $end)))
      (f32.store (i32.add (local.get $out) (local.get $j))
        (f32.add (f32.load (i32.add (local.get $out) (local.get $j))) (f32.mul (local.get $a) (f32.load (i32.add (local.get $w) (local.get $j))))))
      (local.set $j (i32.add (local.get $j) (i32.const 4)))
      (br $one))))

  ;; All rows (4 at a time) times one packed 8-column panel; out and bias already point at its columns.
  (func $panel_rows (param $x i32) (param $rows i32) (param $k i32) (param $ldx i32) (param $panel i32)
        (param $bias i32) (param $out i32) (param $ldo i32)
    (local $r i32) (local $left i32)
    (loop $blocks
      (local.set $left (i32.sub (local.get $rows) (local.get $r)))
      (call $panel_tile4x8
        (i32.add (local.get $x) (i32.mul (local.get $r) (local.get $ldx)))
        (select (local.get $left) (i32.const 4) (i32.lt_u (local.get $left) (i32.const 4)))
        (local.get $k) (local.get $ldx) (local.get $panel) (local.get $bias)
        (i32.add (local.get $out) (i32.mul (local.get $r) (local.get $ldo))) (local.get $ldo))
      (local.set $r (i32.add (local.get $r) (i32.const 4)))
      (br_if $blocks (i32.lt_u (local.get $r) (local.get $rows)))))

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

  ;; Up to 4 rows (nr) times a packed 8-column panel: out[r, 0..8) = bias[0..8) + x[r] . panel.
  (func $panel_tile4x8 (param $x i32) (param $nr i32) (param $k i32) (param $ldx i32) (param $panel i32)
        (param $bias i32) (param $out i32) (param $ldo i32)
    (local $x1 i32) (local $x2 i32) (local $x3 i32) (local $o1 i32) (local $o2 i32) (local $o3 i32)
    (local $i i32) (local $kb i32) (local $p i32)
    (local $a00 v128) (local $a01 v128) (local $a10 v128) (local $a11 v128)
    (local $a20 v128) (local $a21 v128) (local $a30 v128) (local $a31 v128)
    (local $w0 v128) (local $w1 v128) (local $s v128)
    (local.set $x1 (call $row_at (local.get $x) (i32.const 1) (local.get $nr) (local.get $ldx)))
    (local.set $x2 (call $row_at (local.get $x) (i32.const 2) (local.get $nr) (local.get $ldx)))
    (local.set $x3 (call $row_at (local.get $x) (i32.const 3) (local.get $nr) (local.get $ldx)))
    (local.set $o1 (call $row_at (local.get $out) (i32.const 1) (local.get $nr) (local.get $ldo)))
    (local.set $o2 (call $row_at (local.get $out) (i32.const 2) (local.get $nr) (local.get $ldo)))
    (local.set $o3 (call $row_at (local.get $out) (i32.const 3) (local.get $nr) (local.get $ldo)))
    (local.set $kb (i32.shl (local.get $k) (i32.const 2)))
    (if (local.get $bias)
      (then
        (local.set $a00 (v128.load (local.get $bias)))
        (local.set $a01 (v128.load offset=16 (local.get $bias)))))
    (local.set $a10 (local.get $a00)) (local.set $a11 (local.get $a01))
    (local.set $a20 (local.get $a00)) (local.set $a21 (local.get $a01))
    (local.set $a30 (local.get $a00)) (local.set $a31 (local.get $a01))
    (local.set $p (local.get $panel))
    (loop $inner
      (local.set $w0 (v128.load (local.get $p)))
      (local.set $w1 (v128.load offset=16 (local.get $p)))
      (local.set $s (v128.load32_splat (i32.add (local.get $x) (local.get $i))))
      (local.set $a00 (f32x4.add (local.get $a00) (f32x4.mul (local.get $s) (local.get $w0))))
      (local.set $a01 (f32x4.add (local.get $a01) (f32x4.mul (local.get $s) (local.get $w1))))
      (local.set $s (v128.load32_splat (i32.add (local.get $x1) (local.get $i))))
      (local.set $a10 (f32x4.add (local.get $a10) (f32x4.mul (local.get $s) (local.get $w0))))
      (local.set $a11 (f32x4.add (local.get $a11) (f32x4.mul (local.get $s) (local.get $w1))))
      (local.set $s (v128.load32_splat (i32.add (local.get $x2) (local.get $i))))
      (local.set $a20 (f32x4.add (local.get $a20) (f32x4.mul (local.get $s) (local.get $w0))))
      (local.set $a21 (f32x4.add (local.get $a21) (f32x4.mul (local.get $s) (local.get $w1))))
      (local.set $s (v128.load32_splat (i32.add (local.get $x3) (local.get $i))))
      (local.set $a30 (f32x4.add (local.get $a30) (f32x4.mul (local.get $s) (local.get $w0))))
      (local.set $a31 (f32x4.add (local.get $a31) (f32x4.mul (local.get $s) (local.get $w1))))
      (local.set $p (i32.add (local.get $p) (i32.const 32)))
      (local.set $i (i32.add (local.get $i) (i32.const 4)))
      (br_if $inner (i32.lt_u (local.get $i) (local.get $kb))))
    (v128.store (local.get $out) (local.get $a00))
    (v128.store offset=16 (local.get $out) (local.get $a01))
    (v128.store (local.get $o1) (local.get $a10))
    (v128.store offset=16 (local.get $o1) (local.get $a11))
    (v128.store (local.get $o2) (local.get $a20))
    (v128.store offset=16 (local.get $o2) (local.get $a21))
    (v128.store (local.get $o3) (local.get $a30))
    (v128.store offset=16 (local.get $o3) (local.get $a31)))

  (func (export "gemm_nt") (param $x i32) (param $rows i32) (param $k i32) (param $ldx i32)
        (param $w i32) (param $n i32) (param $ldw i32) (param $bias i32) (param $out i32) (param $ldo i32) (param $panel i32)
    (local $r i32) (local $left i32) (local $j i32) (local $n8 i32) (local $kb i32) (local $kb4 i32)
    (local.set $ldx (i32.shl (local.get $ldx) (i32.const 2)))
    (local.set $ldw (i32.shl (local.get $ldw) (i32.const 2)))
    (local.set $ldo (i32.shl (local.get $ldo) (i32.const 2)))
    (if (i32.eq (local.get $rows) (i32.const 1))
      (then
        (call $nt_row (local.get $x) (local.get $k) (local.get $w) (local.get $n) (local.get $ldw) (local.get $bias) (local.get $out))
        (return)))
    (if (i32.le_u (local.get $rows) (i32.const 4))
      (then
        (call $nt_block4 (local.get $x) (local.get $rows) (local.get $k) (local.get $ldx) (local.get $w) (local.get $n)
          (local.get $ldw) (local.get $bias) (local.get $out) (local.get $ldo))
        (return)))
    ;; More rows: each 8 rows of w transposed into a panel, as gemm_nn's, so w is read once for all of them
    ;; (4 rows at a time re-read all of w per 4 rows: measured 1.9x slower at 256 rows).
    (local.set $n8 (i32.and (local.get $n) (i32.const -8)))
    (block $panels_done (loop $panels
      (br_if $panels_done (i32.ge_u (local.get $j) (local.get $n8)))
      (call $pack8t (i32.add (local.get $w) (i32.mul (local.get $j) (local.get $ldw))) (local.get $k) (local.get $ldw) (local.get $panel))
      (call $panel_rows (local.get $x) (local.get $rows) (local.get $k) (local.get $ldx) (local.get $panel)
        (select (i32.add (local.get $bias) (i32.shl (local.get $j) (i32.const 2))) (i32.const 0) (local.get $bias))
        (i32.add (local.get $out) (i32.shl (local.get $j) (i32.const 2))) (local.get $ldo))
      (local.set $j (i32.add (local.get $j) (i32.const 8)))
      (br $panels)))
    ;; The last n % 8 outputs one at a time.
    (local.set $kb (i32.shl (local.get $k) (i32.const 2)))
    (local.set $kb4 (i32.and (local.get $kb) (i32.const -16)))
    (block $cols_done (loop $cols
      (br_if $cols_done (i32.ge_u (local.get $j) (local.get $n)))
      (local.set $r (i32.const 0))
      (loop $each_row
        (call $nt_one (i32.add (local.get $out) (i32.mul (local.get $r) (local.get $ldo))) (local.get $bias) (local.get $j)
          (i32.add (local.get $x) (i32.mul (local.get $r) (local.get $ldx)))
          (i32.add (local.get $w) (i32.mul (local.get $j) (local.get $ldw))) (local.get $kb4) (local.get $kb))
        (local.set $r (i32.add (local.get $r) (i32.const 1)))
        (br_if $each_row (i32.lt_u (local.get $r) (local.get $rows))))
      (local.set $j (i32.add (local.get $j) (i32.const 1)))
      (br $cols))))

  ;; panel[i*8 + c] = w[c*ldw + i] for c < 8, i < k: 8 rows of w side by side (ldw in bytes).
  (func $pack8t (param $w i32) (param $k i32) (param $ldw i32) (param $panel i32)
    (local $end i32)
    (local.set $end (i32.add (local.get $w) (i32.shl (local.get $k) (i32.const 2))))
    (loop $copy
      (f32.store offset=0 (local.get $panel) (f32.load (local.get $w)))
      (f32.store offset=4 (local.get $panel) (f32.load (i32.add (local.get $w) (local.get $ldw))))
      (f32.store offset=8 (local.get $panel) (f32.load (i32.add (local.get $w) (i32.mul (local.get $ldw) (i32.const 2)))))
      (f32.store offset=12 (local.get $panel) (f32.load (i32.add (local.get $w) (i32.mul (local.get $ldw) (i32.const 3)))))
      (f32.store offset=16 (local.get $panel) (f32.load (i32.add (local.get $w) (i32.mul (local.get $ldw) (i32.const 4)))))
      (f32.store offset=20 (local.get $panel) (f32.load (i32.add (local.get $w) (i32.mul (local.get $ldw) (i32.const 5)))))
      (f32.store offset=24 (local.get $panel) (f32.load (i32.add (local.get $w) (i32.mul (local.get $ldw) (i32.const 6)))))
      (f32.store offset=28 (local.get $panel) (f32.load (i32.add (local.get $w) (i32.mul (local.get $ldw) (i32.const 7)))))
      (local.set $w (i32.add (local.get $w) (i32.const 4)))
      (local.set $panel (i32.add (local.get $panel) (i32.const 32)))
      (br_if $copy (i32.lt_u (local.get $w) (local.get $end)))))

  ;; sum over the k % 4 tail of x[i] * w[i], from byte kb4 to kb.
  (func $dot_tail (param $x i32) (param $w i32) (param $kb4 i32) (param $kb i32) (result f32)
    (local $f f32)
    (block $done (loop $tail
      (br_if $done (i32.ge_u (local.get $kb4) (local.get $kb)))
      (local.set $f (f32.add (local.get $f)
        (f32.mul (f32.load (i32.add (local.get $x) (local.get $kb4))) (f32.load (i32.add (local.get $w) (local.get $kb4))))))
      (local.set $kb4 (i32.add (local.get $kb4) (i32.const 4)))
      (br $tail)))
    (local.get $f))

  (func $bias_at (param $bias i32) (param $j i32) (result f32)
    (if (result f32) (local.get $bias)
      (then (f32.load (i32.add (local.get $bias) (i32.shl (local.get $j) (i32.const 2)))))
      (else (f32.const 0))))

;; One row, 4 outputs at a time taken from the four quarters of w (j, j + q, j + 2q, j + 3q): four long
  ;; streams through memory, which the hardware prefetches as it does gemm_nn's. Four adjacent rows of w
  ;; measured 1.8x slower (streams only k floats long). The n % 4 last outputs one at a time.
  (func $nt_row (param $x i32) (param $k i32) (param $w i32) (param $n i32) (param $ldw i32) (param $bias i32) (param $out i32)
    (local $j i32) (local $q i32) (local $qw i32) (local $kb i32) (local $kb4 i32) (local $i i32)
    (local $w0 i32) (local $w1 i32) (local $w2 i32) (local $w3 i32)
    (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128) (local $s v128)
    (local.set $kb (i32.shl (local.get $k) (i32.const 2)))
    (local.set $kb4 (i32.and (local.get $kb) (i32.const -16)))
    (local.set $q (i32.shr_u (local.get $n) (i32.const 2)))
    (local.set $qw (i32.mul (local.get $q) (local.get $ldw)))
    (local.set $w0 (local.get $w))
    (block $done4 (loop $cols4
      (br_if $done4 (i32.ge_u (local.get $j) (local.get $q)))
      (local.set $w1 (i32.add (local.get $w0) (local.get $qw)))
      (local.set $w2 (i32.add (local.get $w1) (local.get $qw)))
      (local.set $w3 (i32.add (local.get $w2) (local.get $qw)))
      (local.set $a0 (v128.const i32x4 0 0 0 0))
      (local.set $a1 (v128.const i32x4 0 0 0 0))
      (local.set $a2 (v128.const i32x4 0 0 0 0))
      (local.set $a3 (v128.const i32x4 0 0 0 0))
      (local.set $i (i32.const 0))
      (block $vdone (loop $vec
        (br_if $vdone (i32.ge_u (local.get $i) (local.get $kb4)))
        (local.set $s (v128.load (i32.add (local.get $x) (local.get $i))))
        (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul (local.get $s) (v128.load (i32.add (local.get $w0) (local.get $i))))))
        (local.set $a1 (f32x4.add (local.get $a1) (f32x4.mul (local.get $s) (v128.load (i32.add (local.get $w1) (local.get $i))))))
        (local.set $a2 (f32x4.add (local.get $a2) (f32x4.mul (local.get $s) (v128.load (i32.add (local.get $w2) (local.get $i))))))
        (local.set $a3 (f32x4.add (local.get $a3) (f32x4.mul (local.get $s) (v128.load (i32.add (local.get $w3) (local.get $i))))))
        (local.set $i (i32.add (local.get $i) (i32.const 16)))
        (br $vec)))
      (call $nt_out (local.get $out) (local.get $bias) (local.get $j) (local.get $a0) (local.get $x) (local.get $w0) (local.get $kb4) (local.get $kb))
      (call $nt_out (local.get $out) (local.get $bias) (i32.add (local.get $j) (local.get $q)) (local.get $a1) (local.get $x) (local.get $w1) (local.get $kb4) (local.get $kb))
      (call $nt_out (local.get $out) (local.get $bias) (i32.add (local.get $j) (i32.shl (local.get $q) (i32.const 1))) (local.get $a2) (local.get $x) (local.get $w2) (local.get $kb4) (local.get $kb))
      (call $nt_out (local.get $out) (local.get $bias) (i32.add (local.get $j) (i32.mul (local.get $q) (i32.const 3))) (local.get $a3) (local.get $x) (local.get $w3) (local.get $kb4) (local.get $kb))
      (local.set $w0 (i32.add (local.get $w0) (local.get $ldw)))
      (local.set $j (i32.add (local.get $j) (i32.const 1)))
      (br $cols4)))
    (local.set $j (i32.shl (local.get $q) (i32.const 2)))
    (block $done1 (loop $cols1
      (br_if $done1 (i32.ge_u (local.get $j) (local.get $n)))
      (call $nt_one (local.get $out) (local.get $bias) (local.get $j) (local.get $x)
        (i32.add (local.get $w) (i32.mul (local.get $j) (local.get $ldw))) (local.get $kb4) (local.get $kb))
      (local.set $j (i32.add (local.get $j) (i32.const 1)))
      (br $cols1))))

  ;; out[j] = bias[j] + (the lanes of a summed + the k % 4 tail of x . w_j).
  (func $nt_out (param $out i32) (param $bias i32) (param $j i32) (param $a v128) (param $x i32) (param $wj i32) (param $kb4 i32) (param $kb i32)
    (f32.store (i32.add (local.get $out) (i32.shl (local.get $j) (i32.const 2)))
      (f32.add (call $bias_at (local.get $bias) (local.get $j))
        (f32.add (call $hsum (local.get $a)) (call $dot_tail (local.get $x) (local.get $wj) (local.get $kb4) (local.get $kb))))))

;; Up to 4 rows (nr) against 2 outputs at a time, j and j + n/2: two long streams through w (one read of w
  ;; per step for all rows), prefetched as $nt_row's; an odd last output alone. Rows beyond nr repeat the
  ;; last one (see $row_at).
  (func $nt_block4 (param $x i32) (param $nr i32) (param $k i32) (param $ldx i32) (param $w i32) (param $n i32)
        (param $ldw i32) (param $bias i32) (param $out i32) (param $ldo i32)
    (local $x1 i32) (local $x2 i32) (local $x3 i32) (local $o1 i32) (local $o2 i32) (local $o3 i32)
    (local $j i32) (local $h i32) (local $kb i32) (local $kb4 i32) (local $i i32) (local $wj i32) (local $wh i32)
    (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128)
    (local $b0 v128) (local $b1 v128) (local $b2 v128) (local $b3 v128) (local $v v128) (local $u v128) (local $s v128)
    (local.set $x1 (call $row_at (local.get $x) (i32.const 1) (local.get $nr) (local.get $ldx)))
    (local.set $x2 (call $row_at (local.get $x) (i32.const 2) (local.get $nr) (local.get $ldx)))
    (local.set $x3 (call $row_at (local.get $x) (i32.const 3) (local.get $nr) (local.get $ldx)))
    (local.set $o1 (call $row_at (local.get $out) (i32.const 1) (local.get $nr) (local.get $ldo)))
    (local.set $o2 (call $row_at (local.get $out) (i32.const 2) (local.get $nr) (local.get $ldo)))
    (local.set $o3 (call $row_at (local.get $out) (i32.const 3) (local.get $nr) (local.get $ldo)))
    (local.set $kb (i32.shl (local.get $k) (i32.const 2)))
    (local.set $kb4 (i32.and (local.get $kb) (i32.const -16)))
    (local.set $h (i32.shr_u (local.get $n) (i32.const 1)))
    (block $done (loop $cols
      (br_if $done (i32.ge_u (local.get $j) (local.get $h)))
      (local.set $wj (i32.add (local.get $w) (i32.mul (local.get $j) (local.get $ldw))))
      (local.set $wh (i32.add (local.get $wj) (i32.mul (local.get $h) (local.get $ldw))))
      (local.set $a0 (v128.const i32x4 0 0 0 0))
      (local.set $a1 (v128.const i32x4 0 0 0 0))
      (local.set $a2 (v128.const i32x4 0 0 0 0))
      (local.set $a3 (v128.const i32x4 0 0 0 0))
      (local.set $b0 (v128.const i32x4 0 0 0 0))
      (local.set $b1 (v128.const i32x4 0 0 0 0))
      (local.set $b2 (v128.const i32x4 0 0 0 0))
      (local.set $b3 (v128.const i32x4 0 0 0 0))
      (local.set $i (i32.const 0))
      (block $vdone (loop $vec
        (br_if $vdone (i32.ge_u (local.get $i) (local.get $kb4)))
        (local.set $v (v128.load (i32.add (local.get $wj) (local.get $i))))
        (local.set $u (v128.load (i32.add (local.get $wh) (local.get $i))))
        (local.set $s (v128.load (i32.add (local.get $x) (local.get $i))))
        (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul (local.get $v) (local.get $s))))
        (local.set $b0 (f32x4.add (local.get $b0) (f32x4.mul (local.get $u) (local.get $s))))
        (local.set $s (v128.load (i32.add (local.get $x1) (local.get $i))))
        (local.set $a1 (f32x4.add (local.get $a1) (f32x4.mul (local.get $v) (local.get $s))))
        (local.set $b1 (f32x4.add (local.get $b1) (f32x4.mul (local.get $u) (local.get $s))))
        (local.set $s (v128.load (i32.add (local.get $x2) (local.get $i))))
        (local.set $a2 (f32x4.add (local.get $a2) (f32x4.mul (local.get $v) (local.get $s))))
        (local.set $b2 (f32x4.add (local.get $b2) (f32x4.mul (local.get $u) (local.get $s))))
        (local.set $s (v128.load (i32.add (local.get $x3) (local.get $i))))
        (local.set $a3 (f32x4.add (local.get $a3) (f32x4.mul (local.get $v) (local.get $s))))
        (local.set $b3 (f32x4.add (local.get $b3) (f32x4.mul (local.get $u) (local.get $s))))
        (local.set $i (i32.add (local.get $i) (i32.const 16)))
        (br $vec)))
      (call $nt_out (local.get $out) (local.get $bias) (local.get $j) (local.get $a0) (local.get $x) (local.get $wj) (local.get $kb4) (local.get $kb))
      (call $nt_out (local.get $o1) (local.get $bias) (local.get $j) (local.get $a1) (local.get $x1) (local.get $wj) (local.get $kb4) (local.get $kb))
      (call $nt_out (local.get $o2) (local.get $bias) (local.get $j) (local.get $a2) (local.get $x2) (local.get $wj) (local.get $kb4) (local.get $kb))
      (call $nt_out (local.get $o3) (local.get $bias) (local.get $j) (local.get $a3) (local.get $x3) (local.get $wj) (local.get $kb4) (local.get $kb))
      (call $nt_out (local.get $out) (local.get $bias) (i32.add (local.get $j) (local.get $h)) (local.get $b0) (local.get $x) (local.get $wh) (local.get $kb4) (local.get $kb))
      (call $nt_out (local.get $o1) (local.get $bias) (i32.add (local.get $j) (local.get $h)) (local.get $b1) (local.get $x1) (local.get $wh) (local.get $kb4) (local.get $kb))
      (call $nt_out (local.get $o2) (local.get $bias) (i32.add (local.get $j) (local.get $h)) (local.get $b2) (local.get $x2) (local.get $wh) (local.get $kb4) (local.get $kb))
      (call $nt_out (local.get $o3) (local.get $bias) (i32.add (local.get $j) (local.get $h)) (local.get $b3) (local.get $x3) (local.get $wh) (local.get $kb4) (local.get $kb))
      (local.set $j (i32.add (local.get $j) (i32.const 1)))
      (br $cols)))
    (if (i32.and (local.get $n) (i32.const 1))
      (then
        (local.set $j (i32.sub (local.get $n) (i32.const 1)))
        (local.set $wj (i32.add (local.get $w) (i32.mul (local.get $j) (local.get $ldw))))
        (call $nt_one (local.get $out) (local.get $bias) (local.get $j) (local.get $x) (local.get $wj) (local.get $kb4) (local.get $kb))
        (call $nt_one (local.get $o1) (local.get $bias) (local.get $j) (local.get $x1) (local.get $wj) (local.get $kb4) (local.get $kb))
        (call $nt_one (local.get $o2) (local.get $bias) (local.get $j) (local.get $x2) (local.get $wj) (local.get $kb4) (local.get $kb))
        (call $nt_one (local.get $o3) (local.get $bias) (local.get $j) (local.get $x3) (local.get $wj) (local.get $kb4) (local.get $kb)))))

  ;; out[j] = bias[j] + x . w_j, summed as $nt_out's.
  (func $nt_one (param $out i32) (param $bias i32) (param $j i32) (param $x i32) (param $wj i32) (param $kb4 i32) (param $kb i32)
    (local $i i32) (local $a v128)
    (block $vdone (loop $vec
      (br_if $vdone (i32.ge_u (local.get $i) (local.get $kb4)))
      (local.set $a (f32x4.add (local.get $a) (f32x4.mul (v128.load (i32.add (local.get $wj) (local.get $i))) (v128.load (i32.add (local.get $x) (local.get $i))))))
      (local.set $i (i32.add (local.get $i) (i32.const 16)))
      (br $vec)))
    (call $nt_out (local.get $out) (local.get $bias) (local.get $j) (local.get $a) (local.get $x) (local.get $wj) (local.get $kb4) (local.get $kb)))

  ;; exp of 4 floats in [-87.3, 88.3] (Cephes' expf: 2^k times a degree-5 polynomial on the remainder, ~1e-7
  ;; relative error): for GELU and the attention's softmax.
  (func $exp4 (param $y v128) (result v128)
    (local $k v128) (local $r v128) (local $e v128)
    ;; exp(y) = 2^k * exp(r), k = round(y / ln 2), r = y - k ln 2 (ln 2 in two parts, as Cephes).
    (local.set $k (f32x4.nearest (f32x4.mul (local.get $y) (v128.const f32x4 1.44269504088896341 1.44269504088896341 1.44269504088896341 1.44269504088896341))))
    (local.set $r (f32x4.sub (local.get $y) (f32x4.mul (local.get $k) (v128.const f32x4 0.693359375 0.693359375 0.693359375 0.693359375))))
    (local.set $r (f32x4.sub (local.get $r) (f32x4.mul (local.get $k) (v128.const f32x4 -2.12194440e-4 -2.12194440e-4 -2.12194440e-4 -2.12194440e-4))))
    (local.set $e (v128.const f32x4 1.9875691500e-4 1.9875691500e-4 1.9875691500e-4 1.9875691500e-4))
    (local.set $e (f32x4.add (f32x4.mul (local.get $e) (local.get $r)) (v128.const f32x4 1.3981999507e-3 1.3981999507e-3 1.3981999507e-3 1.3981999507e-3)))
    (local.set $e (f32x4.add (f32x4.mul (local.get $e) (local.get $r)) (v128.const f32x4 8.3334519073e-3 8.3334519073e-3 8.3334519073e-3 8.3334519073e-3)))
    (local.set $e (f32x4.add (f32x4.mul (local.get $e) (local.get $r)) (v128.const f32x4 4.1665795894e-2 4.1665795894e-2 4.1665795894e-2 4.1665795894e-2)))
    (local.set $e (f32x4.add (f32x4.mul (local.get $e) (local.get $r)) (v128.const f32x4 1.6666665459e-1 1.6666665459e-1 1.6666665459e-1 1.6666665459e-1)))
    (local.set $e (f32x4.add (f32x4.mul (local.get $e) (local.get $r)) (v128.const f32x4 5.0000001201e-1 5.0000001201e-1 5.0000001201e-1 5.0000001201e-1)))
    (local.set $e
      (f32x4.add
        (f32x4.add (f32x4.mul (local.get $e) (f32x4.mul (local.get $r) (local.get $r))) (local.get $r))
        (v128.const f32x4 1 1 1 1)))
    ;; times 2^k: k + 127 in the exponent bits.
    (local.set $e
      (f32x4.mul (local.get $e)
        (i32x4.shl (i32x4.add (i32x4.trunc_sat_f32x4_s (local.get $k)) (v128.const i32x4 127 127 127 127)) (i32.const 23))))
    (local.get $e))

  ;; Softmax in place over one row of n attention scores, scaled by `scale` (> 0) first: exp(scale s - max) / sum,
  ;; the exponentials from $exp4, the sum in float32. Replaces a JavaScript loop of Math.exp per score.
  (func (export "softmax_row") (param $p i32) (param $n i32) (param $scale f32)
    (local $end i32) (local $end4 i32) (local $q i32) (local $m v128) (local $mx f32) (local $sum v128) (local $total f32)
    (local $e v128) (local $inv v128) (local $sc v128)
    (local.set $end (i32.add (local.get $p) (i32.shl (local.get $n) (i32.const 2))))
    (local.set $end4 (i32.add (local.get $p) (i32.and (i32.shl (local.get $n) (i32.const 2)) (i32.const -16))))
    ;; The largest score.
    (local.set $m (v128.const f32x4 -inf -inf -inf -inf))
    (local.set $q (local.get $p))
    (block $done (loop $each
      (br_if $done (i32.ge_u (local.get $q) (local.get $end4)))
      (local.set $m (f32x4.max (local.get $m) (v128.load (local.get $q))))
      (local.set $q (i32.add (local.get $q) (i32.const 16)))
      (br $each)))
    (local.set $mx
      (f32.max
        (f32.max (f32x4.extract_lane 0 (local.get $m)) (f32x4.extract_lane 1 (local.get $m)))
        (f32.max (f32x4.extract_lane 2 (local.get $m)) (f32x4.extract_lane 3 (local.get $m)))))
    (block $done (loop $each
      (br_if $done (i32.ge_u (local.get $q) (local.get $end)))
      (local.set $mx (f32.max (local.get $mx) (f32.load (local.get $q))))
      (local.set $q (i32.add (local.get $q) (i32.const 4)))
      (br $each)))
    (local.set $mx (f32.mul (local.get $mx) (local.get $scale)))
    (local.set $m (f32x4.splat (local.get $mx)))
    (local.set $sc (f32x4.splat (local.get $scale)))
    ;; exp(s - max), at most 1; below -87.3 it is 0 to float32's precision of the sum.
    (local.set $q (local.get $p))
    (block $done (loop $each
      (br_if $done (i32.ge_u (local.get $q) (local.get $end4)))
      (local.set $e (call $exp4 (f32x4.max (f32x4.sub (f32x4.mul (v128.load (local.get $q)) (local.get $sc)) (local.get $m)) (v128.const f32x4 -87.3 -87.3 -87.3 -87.3))))
      (v128.store (local.get $q) (local.get $e))
      (local.set $sum (f32x4.add (local.get $sum) (local.get $e)))
      (local.set $q (i32.add (local.get $q) (i32.const 16)))
      (br $each)))
    (local.set $total (call $hsum (local.get $sum)))
    (block $done (loop $each
      (br_if $done (i32.ge_u (local.get $q) (local.get $end)))
      (local.set $e (call $exp4 (f32x4.splat (f32.max (f32.sub (f32.mul (f32.load (local.get $q)) (local.get $scale)) (local.get $mx)) (f32.const -87.3)))))
      (f32.store (local.get $q) (f32x4.extract_lane 0 (local.get $e)))
      (local.set $total (f32.add (local.get $total) (f32x4.extract_lane 0 (local.get $e))))
      (local.set $q (i32.add (local.get $q) (i32.const 4)))
      (br $each)))
    ;; Divided by the sum.
    (local.set $inv (f32x4.splat (f32.div (f32.const 1) (local.get $total))))
    (local.set $q (local.get $p))
    (block $done (loop $each
      (br_if $done (i32.ge_u (local.get $q) (local.get $end4)))
      (v128.store (local.get $q) (f32x4.mul (v128.load (local.get $q)) (local.get $inv)))
      (local.set $q (i32.add (local.get $q) (i32.const 16)))
      (br $each)))
    (block $done (loop $each
      (br_if $done (i32.ge_u (local.get $q) (local.get $end)))
      (f32.store (local.get $q) (f32.mul (f32.load (local.get $q)) (f32x4.extract_lane 0 (local.get $inv))))
      (local.set $q (i32.add (local.get $q) (i32.const 4)))
      (br $each))))

  ;; GPT-2's GELU in place over n floats (n a multiple of 4): x * 0.5 * (1 + tanh(u)), u = sqrt(2/pi) *
  ;; (x + 0.044715 x^3), computed as x / (1 + exp(-2u)) (the same function). exp is Cephes' expf: 2^k times a
  ;; degree-5 polynomial on the remainder, ~1e-7 relative error; in JavaScript, Math.tanh costs ~40 ns a value,
  ;; a tenth of a 128-token prompt's time on one core.
  (func (export "gelu_tanh") (param $p i32) (param $n i32)
    (local $end i32) (local $x v128) (local $y v128) (local $e v128) (local $big v128)
    (local.set $end (i32.add (local.get $p) (i32.shl (local.get $n) (i32.const 2))))
    (block $done (loop $each
      (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
      (local.set $x (v128.load (local.get $p)))
      ;; y = -2u, clamped where exp(y) stays a finite float32 (beyond, the result is x or -0 anyway).
      (local.set $y
        (f32x4.mul (v128.const f32x4 -1.5957691216057308 -1.5957691216057308 -1.5957691216057308 -1.5957691216057308)
          (f32x4.add (local.get $x)
            (f32x4.mul (v128.const f32x4 0.044715 0.044715 0.044715 0.044715)
              (f32x4.mul (local.get $x) (f32x4.mul (local.get $x) (local.get $x)))))))
      ;; Where exp(y) overflows, x is a huge negative number and the result is -0 (x / inf); set below.
      (local.set $big (f32x4.gt (local.get $y) (v128.const f32x4 88.3 88.3 88.3 88.3)))
      (local.set $y (f32x4.min (f32x4.max (local.get $y) (v128.const f32x4 -87.3 -87.3 -87.3 -87.3)) (v128.const f32x4 88.3 88.3 88.3 88.3)))
      (local.set $e (call $exp4 (local.get $y)))
      (v128.store (local.get $p)
        (v128.bitselect
          (v128.and (local.get $x) (v128.const i32x4 0x80000000 0x80000000 0x80000000 0x80000000))
          (f32x4.div (local.get $x) (f32x4.add (v128.const f32x4 1 1 1 1) (local.get $e)))
          (local.get $big)))
      (local.set $p (i32.add (local.get $p) (i32.const 16)))
      (br $each))))

  ;; Layer norm of `rows` rows of c floats (c a multiple of 4) at x into out, after adding `branch` into x in
  ;; place when branch is not 0 (the residual seam between two sub-layers). Biased variance, eps inside the
  ;; square root, as PyTorch. The mean and variance are summed in float64, as the JavaScript loops did.
  (func (export "layer_norm") (param $x i32) (param $branch i32) (param $rows i32) (param $c i32)
        (param $gamma i32) (param $beta i32) (param $eps f64) (param $out i32)
    (local $r i32) (local $i i32) (local $cb i32) (local $v v128) (local $d v128) (local $s v128) (local $q v128)
    (local $mean f64) (local $m v128) (local $rstd v128)
    (local.set $cb (i32.shl (local.get $c) (i32.const 2)))
    (block $rows_done (loop $each_row
      (br_if $rows_done (i32.ge_u (local.get $r) (local.get $rows)))
      (local.set $s (v128.const i64x2 0 0))
      (local.set $i (i32.const 0))
      (loop $sum
        (local.set $v (v128.load (i32.add (local.get $x) (local.get $i))))
        (if (local.get $branch)
          (then
            (local.set $v (f32x4.add (local.get $v) (v128.load (i32.add (local.get $branch) (local.get $i)))))
            (v128.store (i32.add (local.get $x) (local.get $i)) (local.get $v))))
        (local.set $s (f64x2.add (local.get $s)
          (f64x2.add (f64x2.promote_low_f32x4 (local.get $v))
            (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $v) (local.get $v))))))
        (local.set $i (i32.add (local.get $i) (i32.const 16)))
        (br_if $sum (i32.lt_u (local.get $i) (local.get $cb))))
      (local.set $mean (f64.div (f64.add (f64x2.extract_lane 0 (local.get $s)) (f64x2.extract_lane 1 (local.get $s)))
        (f64.convert_i32_u (local.get $c))))
      (local.set $m (f64x2.splat (local.get $mean)))
      (local.set $q (v128.const i64x2 0 0))
      (local.set $i (i32.const 0))
      (loop $squares
        (local.set $v (v128.load (i32.add (local.get $x) (local.get $i))))
        (local.set $d (f64x2.sub (f64x2.promote_low_f32x4 (local.get $v)) (local.get $m)))
        (local.set $q (f64x2.add (local.get $q) (f64x2.mul (local.get $d) (local.get $d))))
        (local.set $d (f64x2.sub
          (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $v) (local.get $v)))
          (local.get $m)))
        (local.set $q (f64x2.add (local.get $q) (f64x2.mul (local.get $d) (local.get $d))))
        (local.set $i (i32.add (local.get $i) (i32.const 16)))
        (br_if $squares (i32.lt_u (local.get $i) (local.get $cb))))
      (local.set $rstd (f32x4.splat (f32.demote_f64 (f64.div (f64.const 1)
        (f64.sqrt (f64.add (f64.div (f64.add (f64x2.extract_lane 0 (local.get $q)) (f64x2.extract_lane 1 (local.get $q)))
          (f64.convert_i32_u (local.get $c))) (local.get $eps)))))))
      (local.set $m (f32x4.splat (f32.demote_f64 (local.get $mean))))
      (local.set $i (i32.const 0))
      (loop $scale
        (v128.store (i32.add (local.get $out) (local.get $i))
          (f32x4.add
            (f32x4.mul
              (f32x4.mul (f32x4.sub (v128.load (i32.add (local.get $x) (local.get $i))) (local.get $m)) (local.get $rstd))
              (v128.load (i32.add (local.get $gamma) (local.get $i))))
            (v128.load (i32.add (local.get $beta) (local.get $i)))))
        (local.set $i (i32.add (local.get $i) (i32.const 16)))
        (br_if $scale (i32.lt_u (local.get $i) (local.get $cb))))
      (local.set $x (i32.add (local.get $x) (local.get $cb)))
      (if (local.get $branch) (then (local.set $branch (i32.add (local.get $branch) (local.get $cb)))))
      (local.set $out (i32.add (local.get $out) (local.get $cb)))
      (local.set $r (i32.add (local.get $r) (i32.const 1)))
      (br $each_row))))

  ;; dst[i] += src[i] for i < n: the two partial sums of a product split between two threads.
  (func (export "add") (param $dst i32) (param $src i32) (param $n i32)
    (local $end i32) (local $end4 i32)
    (local.set $end (i32.add (local.get $dst) (i32.shl (local.get $n) (i32.const 2))))
    (local.set $end4 (i32.add (local.get $dst) (i32.shl (i32.and (local.get $n) (i32.const -4)) (i32.const 2))))
    (block $done4 (loop $each4
      (br_if $done4 (i32.ge_u (local.get $dst) (local.get $end4)))
      (v128.store (local.get $dst) (f32x4.add (v128.load (local.get $dst)) (v128.load (local.get $src))))
      (local.set $dst (i32.add (local.get $dst) (i32.const 16)))
      (local.set $src (i32.add (local.get $src) (i32.const 16)))
      (br $each4)))
    (block $done (loop $each
      (br_if $done (i32.ge_u (local.get $dst) (local.get $end)))
      (f32.store (local.get $dst) (f32.add (f32.load (local.get $dst)) (f32.load (local.get $src))))
      (local.set $dst (i32.add (local.get $dst) (i32.const 4)))
      (local.set $src (i32.add (local.get $src) (i32.const 4)))
      (br $each))))
)
