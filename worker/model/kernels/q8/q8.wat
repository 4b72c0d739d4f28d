;; Matrix-vector kernels for GPT-2 decoding on CPUs: int8 weights with one float32 scale per group of 32,
;; and an exact float32 baseline. Decoding reads every weight once per token, so these are bound by memory
;; bandwidth; int8 (1 byte + 4/32 bytes of scale per weight) reads ~3.5x fewer bytes than float32.
;;
;; Layouts (all pointers are byte offsets into the imported memory):
;;   weights   output-row-major: row r holds the in_dim weights that produce output r.
;;             int8: w[r*in_dim + i]; scales ws[r*(in_dim/32) + g] (float32), one per group of 32.
;;             f32:  w[r*in_dim + i].
;;   inputs    n_x vectors one after another: x[j*in_dim + i]; quantized: xq[j*in_dim + i] (int8) and
;;             xs[j*(in_dim/32) + g] (float32).
;;   outputs   y[j*out_dim + r] (float32), written only for rows in [row_start, row_end), so that threads
;;             can split the rows of one product between them.
;;   bias      bias[r] (float32) added to every output, or bias_ptr = 0 for none.
;; in_dim must be a positive multiple of 32 and 1 <= n_x <= 4; the TypeScript wrappers (q8.ts) check both.
;;
;; Built with `node scripts/build-kernels.mjs` (wabt, SIMD enabled) into q8.wasm beside this file.
(module
  (import "env" "memory" (memory 1))

  ;; Symmetric int8 quantization of n float32 values (n a multiple of 32), one scale per group of 32:
  ;; scale = max|x| / 127, q = round-to-nearest-even(x * 127 / max|x|); a group of zeros gets scale 0.
  ;; Returns 1 if a value was NaN or infinite (its group's numbers are then meaningless), else 0: v - v is 0 for
  ;; every finite v and NaN otherwise, and a NaN in the running sum stays.
  (func (export "quantize_x") (param $x i32) (param $n i32) (param $xq i32) (param $xs i32) (result i32)
    (local $end i32) (local $finite v128)
    (local $v0 v128) (local $v1 v128) (local $v2 v128) (local $v3 v128)
    (local $v4 v128) (local $v5 v128) (local $v6 v128) (local $v7 v128)
    (local $m v128) (local $max f32) (local $inv v128) (local $scale f32)
    (local.set $end (i32.add (local.get $x) (i32.shl (local.get $n) (i32.const 2))))
    (block $done
      (loop $group
        (br_if $done (i32.ge_u (local.get $x) (local.get $end)))
        (local.set $v0 (v128.load offset=0 (local.get $x)))
        (local.set $v1 (v128.load offset=16 (local.get $x)))
        (local.set $v2 (v128.load offset=32 (local.get $x)))
        (local.set $v3 (v128.load offset=48 (local.get $x)))
        (local.set $v4 (v128.load offset=64 (local.get $x)))
        (local.set $v5 (v128.load offset=80 (local.get $x)))
        (local.set $v6 (v128.load offset=96 (local.get $x)))
        (local.set $v7 (v128.load offset=112 (local.get $x)))
        (local.set $finite
          (f32x4.add (local.get $finite)
            (f32x4.add
              (f32x4.add
                (f32x4.add (f32x4.sub (local.get $v0) (local.get $v0)) (f32x4.sub (local.get $v1) (local.get $v1)))
                (f32x4.add (f32x4.sub (local.get $v2) (local.get $v2)) (f32x4.sub (local.get $v3) (local.get $v3))))
              (f32x4.add
                (f32x4.add (f32x4.sub (local.get $v4) (local.get $v4)) (f32x4.sub (local.get $v5) (local.get $v5)))
                (f32x4.add (f32x4.sub (local.get $v6) (local.get $v6)) (f32x4.sub (local.get $v7) (local.get $v7)))))))
        ;; pmax (plain maxps) is enough: the operands are absolute values.
        (local.set $m
          (f32x4.pmax
            (f32x4.pmax
              (f32x4.pmax (f32x4.abs (local.get $v0)) (f32x4.abs (local.get $v1)))
              (f32x4.pmax (f32x4.abs (local.get $v2)) (f32x4.abs (local.get $v3))))
            (f32x4.pmax
              (f32x4.pmax (f32x4.abs (local.get $v4)) (f32x4.abs (local.get $v5)))
              (f32x4.pmax (f32x4.abs (local.get $v6)) (f32x4.abs (local.get $v7))))))
        (local.set $max
          (f32.max
            (f32.max (f32x4.extract_lane 0 (local.get $m)) (f32x4.extract_lane 1 (local.get $m)))
            (f32.max (f32x4.extract_lane 2 (local.get $m)) (f32x4.extract_lane 3 (local.get $m)))))
        ;; Below 2^-120, 127/max would overflow float32: such a group (denormals, zeros) quantizes to zero.
        (if (f32.ge (local.get $max) (f32.const 0x1p-120))
          (then
            (local.set $scale (f32.div (local.get $max) (f32.const 127)))
            (local.set $inv (f32x4.splat (f32.div (f32.const 127) (local.get $max)))))
          (else
            (local.set $scale (f32.const 0))
            (local.set $inv (f32x4.splat (f32.const 0)))))
        (f32.store (local.get $xs) (local.get $scale))
        ;; |x * inv| <= 127 (up to rounding, which nearest then absorbs), so the narrowing never saturates.
        (v128.store offset=0 (local.get $xq)
          (i8x16.narrow_i16x8_s
            (i16x8.narrow_i32x4_s
              (i32x4.trunc_sat_f32x4_s (f32x4.nearest (f32x4.mul (local.get $v0) (local.get $inv))))
              (i32x4.trunc_sat_f32x4_s (f32x4.nearest (f32x4.mul (local.get $v1) (local.get $inv)))))
            (i16x8.narrow_i32x4_s
              (i32x4.trunc_sat_f32x4_s (f32x4.nearest (f32x4.mul (local.get $v2) (local.get $inv))))
              (i32x4.trunc_sat_f32x4_s (f32x4.nearest (f32x4.mul (local.get $v3) (local.get $inv)))))))
        (v128.store offset=16 (local.get $xq)
          (i8x16.narrow_i16x8_s
            (i16x8.narrow_i32x4_s
              (i32x4.trunc_sat_f32x4_s (f32x4.nearest (f32x4.mul (local.get $v4) (local.get $inv))))
              (i32x4.trunc_sat_f32x4_s (f32x4.nearest (f32x4.mul (local.get $v5) (local.get $inv)))))
            (i16x8.narrow_i32x4_s
              (i32x4.trunc_sat_f32x4_s (f32x4.nearest (f32x4.mul (local.get $v6) (local.get $inv))))
              (i32x4.trunc_sat_f32x4_s (f32x4.nearest (f32x4.mul (local.get $v7) (local.get $inv)))))))
        (local.set $x (i32.add (local.get $x) (i32.const 128)))
        (local.set $xq (i32.add (local.get $xq) (i32.const 32)))
        (local.set $xs (i32.add (local.get $xs) (i32.const 4)))
        (br $group)))
    (v128.any_true (f32x4.ne (local.get $finite) (local.get $finite))))

  ;; One group of an input-major ('in-out') matrix quantized by quantize_x's rule: rows [0, 32) of n columns (n
  ;; a multiple of 4) at w, rows ldw bytes apart; in column o the group's 32 values get scale = max|w| / 127
  ;; and codes nearest(w * 127 / max), written output-major as q8_matvec reads them: codes at
  ;; codes + o * code_stride (32 bytes), the scale at scales + o * scale_stride. Four columns at a time: one
  ;; pass for their maxima, one for their codes (the 32 rows are still in cache). Returns 1 if a value was NaN
  ;; or infinite (the caller then reports it), else 0.
  (func (export "quantize_cols") (param $w i32) (param $n i32) (param $ldw i32) (param $codes i32) (param $code_stride i32)
        (param $scales i32) (param $scale_stride i32) (result i32)
    (local $o i32) (local $end i32) (local $p i32) (local $i i32) (local $at i32)
    (local $v v128) (local $m v128) (local $keep v128) (local $inv v128) (local $scale v128) (local $q v128) (local $bad v128)
    (local.set $end (i32.shl (local.get $n) (i32.const 2)))
    (block $done (loop $columns
      (br_if $done (i32.ge_u (local.get $o) (local.get $end)))
      (local.set $m (v128.const i32x4 0 0 0 0))
      (local.set $p (i32.add (local.get $w) (local.get $o)))
      (local.set $i (i32.const 0))
      (loop $max
        (local.set $v (v128.load (local.get $p)))
        (local.set $bad (v128.or (local.get $bad) (f32x4.ne (local.get $v) (local.get $v))))
        (local.set $m (f32x4.pmax (local.get $m) (f32x4.abs (local.get $v))))
        (local.set $p (i32.add (local.get $p) (local.get $ldw)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br_if $max (i32.lt_u (local.get $i) (i32.const 32))))
      (local.set $bad (v128.or (local.get $bad) (f32x4.eq (local.get $m) (v128.const f32x4 inf inf inf inf))))
      ;; Below 2^-120, 127/max would overflow: such a column's group quantizes to zero (scale 0, codes 0).
      (local.set $keep (f32x4.ge (local.get $m) (v128.const f32x4 0x1p-120 0x1p-120 0x1p-120 0x1p-120)))
      (local.set $scale (v128.and (local.get $keep) (f32x4.div (local.get $m) (v128.const f32x4 127 127 127 127))))
      (local.set $inv (v128.and (local.get $keep) (f32x4.div (v128.const f32x4 127 127 127 127) (local.get $m))))
      ;; Column c = o / 4 (+ lane): its scale and its codes.
      (local.set $at (i32.add (local.get $scales) (i32.mul (i32.shr_u (local.get $o) (i32.const 2)) (local.get $scale_stride))))
      (f32.store (local.get $at) (f32x4.extract_lane 0 (local.get $scale)))
      (f32.store (i32.add (local.get $at) (local.get $scale_stride)) (f32x4.extract_lane 1 (local.get $scale)))
      (f32.store (i32.add (local.get $at) (i32.shl (local.get $scale_stride) (i32.const 1))) (f32x4.extract_lane 2 (local.get $scale)))
      (f32.store (i32.add (local.get $at) (i32.mul (local.get $scale_stride) (i32.const 3))) (f32x4.extract_lane 3 (local.get $scale)))
      (local.set $at (i32.add (local.get $codes) (i32.mul (i32.shr_u (local.get $o) (i32.const 2)) (local.get $code_stride))))
      (local.set $p (i32.add (local.get $w) (local.get $o)))
      (local.set $i (i32.const 0))
      (loop $quantize
        (local.set $q (i32x4.trunc_sat_f32x4_s (f32x4.nearest (f32x4.mul (v128.load (local.get $p)) (local.get $inv)))))
        (i32.store8 (local.get $at) (i32x4.extract_lane 0 (local.get $q)))
        (i32.store8 (i32.add (local.get $at) (local.get $code_stride)) (i32x4.extract_lane 1 (local.get $q)))
        (i32.store8 (i32.add (local.get $at) (i32.shl (local.get $code_stride) (i32.const 1))) (i32x4.extract_lane 2 (local.get $q)))
        (i32.store8 (i32.add (local.get $at) (i32.mul (local.get $code_stride) (i32.const 3))) (i32x4.extract_lane 3 (local.get $q)))
        (local.set $p (i32.add (local.get $p) (local.get $ldw)))
        (local.set $at (i32.add (local.get $at) (i32.const 1)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br_if $quantize (i32.lt_u (local.get $i) (i32.const 32))))
      (local.set $o (i32.add (local.get $o) (i32.const 16)))
      (br $columns)))
    (v128.any_true (local.get $bad)))

  ;; y[j][r] = sum_g ws[r][g] * xs[j][g] * (w[r][g] . xq[j][g]) (+ bias[r]), for r in [row_start, row_end)
  ;; and j < n_x. Each group of 32 weights is loaded once (sign-extended to 16 bits as it is loaded) and used
  ;; for every input vector; i32x4.dot_i16x8_s (pmaddwd) multiplies and adds pairs exactly in 32 bits, the
  ;; four dot products of a group are summed as a tree, and only then converted and scaled in float32.
  ;;
  ;; One loop per batch size, written out: with the batch size tested inside the loop instead, V8 (11.3)
  ;; kept the accumulators in stack slots and reloaded them every group (measured ~2x slower). The sums of
  ;; a row are stored inline for the same reason: a call per output made V8 save every live register.
  ;; Grouping several groups' sums into one vector before scaling needs fewer instructions on paper, but V8
  ;; hoists all of their loads to the top of the loop and spills them (measured slower); one group per step
  ;; keeps everything in registers. An n_x outside 1..4 traps.
  (func (export "q8_matvec")
    (param $w i32) (param $ws i32) (param $xq i32) (param $xs i32) (param $y i32) (param $bias i32)
    (param $in_dim i32) (param $row_start i32) (param $row_end i32) (param $n_x i32) (param $out_dim i32)
    (block $bad
      (block $four
        (block $three
          (block $two
            (block $one
              (br_table $bad $one $two $three $four $bad (local.get $n_x)))
            (call $q8_rows_1 (local.get $w) (local.get $ws) (local.get $xq) (local.get $xs) (local.get $y) (local.get $bias)
              (local.get $in_dim) (local.get $row_start) (local.get $row_end) (local.get $out_dim))
            (return))
          (call $q8_rows_2 (local.get $w) (local.get $ws) (local.get $xq) (local.get $xs) (local.get $y) (local.get $bias)
            (local.get $in_dim) (local.get $row_start) (local.get $row_end) (local.get $out_dim))
          (return))
        (call $q8_rows_3 (local.get $w) (local.get $ws) (local.get $xq) (local.get $xs) (local.get $y) (local.get $bias)
          (local.get $in_dim) (local.get $row_start) (local.get $row_end) (local.get $out_dim))
        (return))
      (call $q8_rows_4 (local.get $w) (local.get $ws) (local.get $xq) (local.get $xs) (local.get $y) (local.get $bias)
        (local.get $in_dim) (local.get $row_start) (local.get $row_end) (local.get $out_dim))
      (return))
    (unreachable))

  ;; q8_matvec for exactly 1 input vector.
  (func $q8_rows_1
    (param $w i32) (param $ws i32) (param $xq i32) (param $xs i32) (param $y i32) (param $bias i32)
    (param $in_dim i32) (param $row_start i32) (param $row_end i32) (param $out_dim i32)
    (local $r i32) (local $wp i32) (local $sp i32) (local $o i32) (local $so i32) (local $scale_bytes i32)
    (local $y_at i32) (local $b f32)
    (local $w0 v128) (local $w1 v128) (local $w2 v128) (local $w3 v128) (local $sw f32)
    (local $acc0 v128)
    (local.set $scale_bytes (i32.shr_u (local.get $in_dim) (i32.const 3))) ;; (in_dim / 32) groups × 4 bytes
    (local.set $r (local.get $row_start))
    (local.set $wp (i32.add (local.get $w) (i32.mul (local.get $r) (local.get $in_dim))))
    (local.set $sp (i32.add (local.get $ws) (i32.mul (local.get $r) (local.get $scale_bytes))))
    (block $rows_done
      (loop $row
        (br_if $rows_done (i32.ge_u (local.get $r) (local.get $row_end)))
        (local.set $acc0 (v128.const i32x4 0 0 0 0))
        (local.set $y_at (i32.add (local.get $y) (i32.shl (local.get $r) (i32.const 2))))
        (local.set $b (if (result f32) (local.get $bias)
          (then (f32.load (i32.add (local.get $bias) (i32.shl (local.get $r) (i32.const 2)))))
          (else (f32.const 0))))
        (local.set $o (i32.const 0))
        (loop $group
          (local.set $so (i32.shr_u (local.get $o) (i32.const 3)))
          (local.set $w0 (v128.load8x8_s offset=0 (i32.add (local.get $wp) (local.get $o))))
          (local.set $w1 (v128.load8x8_s offset=8 (i32.add (local.get $wp) (local.get $o))))
          (local.set $w2 (v128.load8x8_s offset=16 (i32.add (local.get $wp) (local.get $o))))
          (local.set $w3 (v128.load8x8_s offset=24 (i32.add (local.get $wp) (local.get $o))))
          (local.set $sw (f32.load (i32.add (local.get $sp) (local.get $so))))
          (local.set $acc0
            (f32x4.add (local.get $acc0)
              (f32x4.mul
                (f32x4.convert_i32x4_s
                  (i32x4.add
                    (i32x4.add
                      (i32x4.dot_i16x8_s (local.get $w0) (v128.load8x8_s offset=0 (i32.add (local.get $xq) (local.get $o))))
                      (i32x4.dot_i16x8_s (local.get $w1) (v128.load8x8_s offset=8 (i32.add (local.get $xq) (local.get $o)))))
                    (i32x4.add
                      (i32x4.dot_i16x8_s (local.get $w2) (v128.load8x8_s offset=16 (i32.add (local.get $xq) (local.get $o))))
                      (i32x4.dot_i16x8_s (local.get $w3) (v128.load8x8_s offset=24 (i32.add (local.get $xq) (local.get $o)))))))
                (f32x4.splat (f32.mul (local.get $sw) (f32.load (i32.add (local.get $xs) (local.get $so))))))))
          (local.set $o (i32.add (local.get $o) (i32.const 32)))
          (br_if $group (i32.lt_u (local.get $o) (local.get $in_dim))))
        (f32.store (local.get $y_at)
          (f32.add (local.get $b)
            (f32.add
              (f32.add (f32x4.extract_lane 0 (local.get $acc0)) (f32x4.extract_lane 1 (local.get $acc0)))
              (f32.add (f32x4.extract_lane 2 (local.get $acc0)) (f32x4.extract_lane 3 (local.get $acc0))))))
        (local.set $wp (i32.add (local.get $wp) (local.get $in_dim)))
        (local.set $sp (i32.add (local.get $sp) (local.get $scale_bytes)))
        (local.set $r (i32.add (local.get $r) (i32.const 1)))
        (br $row))))

  ;; q8_matvec for exactly 2 input vectors.
  (func $q8_rows_2
    (param $w i32) (param $ws i32) (param $xq i32) (param $xs i32) (param $y i32) (param $bias i32)
    (param $in_dim i32) (param $row_start i32) (param $row_end i32) (param $out_dim i32)
    (local $r i32) (local $wp i32) (local $sp i32) (local $o i32) (local $so i32) (local $scale_bytes i32)
    (local $y_at i32) (local $y_stride i32) (local $b f32)
    (local $x1 i32) (local $s1 i32)
    (local $w0 v128) (local $w1 v128) (local $w2 v128) (local $w3 v128) (local $sw f32)
    (local $acc0 v128) (local $acc1 v128)
    (local.set $scale_bytes (i32.shr_u (local.get $in_dim) (i32.const 3))) ;; (in_dim / 32) groups × 4 bytes
    (local.set $x1 (i32.add (local.get $xq) (local.get $in_dim)))
    (local.set $s1 (i32.add (local.get $xs) (local.get $scale_bytes)))
    (local.set $y_stride (i32.shl (local.get $out_dim) (i32.const 2)))
    (local.set $r (local.get $row_start))
    (local.set $wp (i32.add (local.get $w) (i32.mul (local.get $r) (local.get $in_dim))))
    (local.set $sp (i32.add (local.get $ws) (i32.mul (local.get $r) (local.get $scale_bytes))))
    (block $rows_done
      (loop $row
        (br_if $rows_done (i32.ge_u (local.get $r) (local.get $row_end)))
        (local.set $acc0 (v128.const i32x4 0 0 0 0))
        (local.set $acc1 (v128.const i32x4 0 0 0 0))
        (local.set $y_at (i32.add (local.get $y) (i32.shl (local.get $r) (i32.const 2))))
        (local.set $b (if (result f32) (local.get $bias)
          (then (f32.load (i32.add (local.get $bias) (i32.shl (local.get $r) (i32.const 2)))))
          (else (f32.const 0))))
        (local.set $o (i32.const 0))
        (loop $group
          (local.set $so (i32.shr_u (local.get $o) (i32.const 3)))
          (local.set $w0 (v128.load8x8_s offset=0 (i32.add (local.get $wp) (local.get $o))))
          (local.set $w1 (v128.load8x8_s offset=8 (i32.add (local.get $wp) (local.get $o))))
          (local.set $w2 (v128.load8x8_s offset=16 (i32.add (local.get $wp) (local.get $o))))
          (local.set $w3 (v128.load8x8_s offset=24 (i32.add (local.get $wp) (local.get $o))))
          (local.set $sw (f32.load (i32.add (local.get $sp) (local.get $so))))
          (local.set $acc0
            (f32x4.add (local.get $acc0)
              (f32x4.mul
                (f32x4.convert_i32x4_s
                  (i32x4.add
                    (i32x4.add
                      (i32x4.dot_i16x8_s (local.get $w0) (v128.load8x8_s offset=0 (i32.add (local.get $xq) (local.get $o))))
                      (i32x4.dot_i16x8_s (local.get $w1) (v128.load8x8_s offset=8 (i32.add (local.get $xq) (local.get $o)))))
                    (i32x4.add
                      (i32x4.dot_i16x8_s (local.get $w2) (v128.load8x8_s offset=16 (i32.add (local.get $xq) (local.get $o))))
                      (i32x4.dot_i16x8_s (local.get $w3) (v128.load8x8_s offset=24 (i32.add (local.get $xq) (local.get $o)))))))
                (f32x4.splat (f32.mul (local.get $sw) (f32.load (i32.add (local.get $xs) (local.get $so))))))))
          (local.set $acc1
            (f32x4.add (local.get $acc1)
              (f32x4.mul
                (f32x4.convert_i32x4_s
                  (i32x4.add
                    (i32x4.add
                      (i32x4.dot_i16x8_s (local.get $w0) (v128.load8x8_s offset=0 (i32.add (local.get $x1) (local.get $o))))
                      (i32x4.dot_i16x8_s (local.get $w1) (v128.load8x8_s offset=8 (i32.add (local.get $x1) (local.get $o)))))
                    (i32x4.add
                      (i32x4.dot_i16x8_s (local.get $w2) (v128.load8x8_s offset=16 (i32.add (local.get $x1) (local.get $o))))
                      (i32x4.dot_i16x8_s (local.get $w3) (v128.load8x8_s offset=24 (i32.add (local.get $x1) (local.get $o)))))))
                (f32x4.splat (f32.mul (local.get $sw) (f32.load (i32.add (local.get $s1) (local.get $so))))))))
          (local.set $o (i32.add (local.get $o) (i32.const 32)))
          (br_if $group (i32.lt_u (local.get $o) (local.get $in_dim))))
        (f32.store (local.get $y_at)
          (f32.add (local.get $b)
            (f32.add
              (f32.add (f32x4.extract_lane 0 (local.get $acc0)) (f32x4.extract_lane 1 (local.get $acc0)))
              (f32.add (f32x4.extract_lane 2 (local.get $acc0)) (f32x4.extract_lane 3 (local.get $acc0))))))
        (f32.store (i32.add (local.get $y_at) (local.get $y_stride))
          (f32.add (local.get $b)
            (f32.add
              (f32.add (f32x4.extract_lane 0 (local.get $acc1)) (f32x4.extract_lane 1 (local.get $acc1)))
              (f32.add (f32x4.extract_lane 2 (local.get $acc1)) (f32x4.extract_lane 3 (local.get $acc1))))))
        (local.set $wp (i32.add (local.get $wp) (local.get $in_dim)))
        (local.set $sp (i32.add (local.get $sp) (local.get $scale_bytes)))
        (local.set $r (i32.add (local.get $r) (i32.const 1)))
        (br $row))))

  ;; q8_matvec for exactly 3 input vectors, half a group (16 weights) per step of an inner loop: with a
  ;; whole group per step, V8 loads all 12-16 input vectors first and spills them (measured ~15% slower).
  (func $q8_rows_3
    (param $w i32) (param $ws i32) (param $xq i32) (param $xs i32) (param $y i32) (param $bias i32)
    (param $in_dim i32) (param $row_start i32) (param $row_end i32) (param $out_dim i32)
    (local $r i32) (local $wp i32) (local $sp i32) (local $o i32) (local $so i32) (local $scale_bytes i32)
    (local $y_at i32) (local $y_stride i32) (local $b f32)
    (local $x1 i32) (local $s1 i32) (local $x2 i32) (local $s2 i32)
    (local $w0 v128) (local $w1 v128) (local $w2 v128) (local $w3 v128) (local $sw f32)
    (local $acc0 v128) (local $acc1 v128) (local $acc2 v128)
    (local $group_end i32) (local $d0 v128) (local $d1 v128) (local $d2 v128)
    (local.set $scale_bytes (i32.shr_u (local.get $in_dim) (i32.const 3))) ;; (in_dim / 32) groups × 4 bytes
    (local.set $x1 (i32.add (local.get $xq) (local.get $in_dim)))
    (local.set $s1 (i32.add (local.get $xs) (local.get $scale_bytes)))
    (local.set $x2 (i32.add (local.get $x1) (local.get $in_dim)))
    (local.set $s2 (i32.add (local.get $s1) (local.get $scale_bytes)))
    (local.set $y_stride (i32.shl (local.get $out_dim) (i32.const 2)))
    (local.set $r (local.get $row_start))
    (local.set $wp (i32.add (local.get $w) (i32.mul (local.get $r) (local.get $in_dim))))
    (local.set $sp (i32.add (local.get $ws) (i32.mul (local.get $r) (local.get $scale_bytes))))
    (block $rows_done
      (loop $row
        (br_if $rows_done (i32.ge_u (local.get $r) (local.get $row_end)))
        (local.set $acc0 (v128.const i32x4 0 0 0 0))
        (local.set $acc1 (v128.const i32x4 0 0 0 0))
        (local.set $acc2 (v128.const i32x4 0 0 0 0))
        (local.set $y_at (i32.add (local.get $y) (i32.shl (local.get $r) (i32.const 2))))
        (local.set $b (if (result f32) (local.get $bias)
          (then (f32.load (i32.add (local.get $bias) (i32.shl (local.get $r) (i32.const 2)))))
          (else (f32.const 0))))
        (local.set $o (i32.const 0))
        (loop $group
          (local.set $d0 (v128.const i32x4 0 0 0 0))
          (local.set $d1 (v128.const i32x4 0 0 0 0))
          (local.set $d2 (v128.const i32x4 0 0 0 0))
          (local.set $so (i32.shr_u (local.get $o) (i32.const 3)))
          (local.set $group_end (i32.add (local.get $o) (i32.const 32)))
          (loop $half
            (local.set $w0 (v128.load8x8_s offset=0 (i32.add (local.get $wp) (local.get $o))))
            (local.set $w1 (v128.load8x8_s offset=8 (i32.add (local.get $wp) (local.get $o))))
            (local.set $d0
              (i32x4.add (local.get $d0)
                (i32x4.add
                  (i32x4.dot_i16x8_s (local.get $w0) (v128.load8x8_s offset=0 (i32.add (local.get $xq) (local.get $o))))
                  (i32x4.dot_i16x8_s (local.get $w1) (v128.load8x8_s offset=8 (i32.add (local.get $xq) (local.get $o)))))))
            (local.set $d1
              (i32x4.add (local.get $d1)
                (i32x4.add
                  (i32x4.dot_i16x8_s (local.get $w0) (v128.load8x8_s offset=0 (i32.add (local.get $x1) (local.get $o))))
                  (i32x4.dot_i16x8_s (local.get $w1) (v128.load8x8_s offset=8 (i32.add (local.get $x1) (local.get $o)))))))
            (local.set $d2
              (i32x4.add (local.get $d2)
                (i32x4.add
                  (i32x4.dot_i16x8_s (local.get $w0) (v128.load8x8_s offset=0 (i32.add (local.get $x2) (local.get $o))))
                  (i32x4.dot_i16x8_s (local.get $w1) (v128.load8x8_s offset=8 (i32.add (local.get $x2) (local.get $o)))))))
            (local.set $o (i32.add (local.get $o) (i32.const 16)))
            (br_if $half (i32.lt_u (local.get $o) (local.get $group_end))))
          (local.set $sw (f32.load (i32.add (local.get $sp) (local.get $so))))
          (local.set $acc0
            (f32x4.add (local.get $acc0)
              (f32x4.mul (f32x4.convert_i32x4_s (local.get $d0))
                (f32x4.splat (f32.mul (local.get $sw) (f32.load (i32.add (local.get $xs) (local.get $so))))))))
          (local.set $acc1
            (f32x4.add (local.get $acc1)
              (f32x4.mul (f32x4.convert_i32x4_s (local.get $d1))
                (f32x4.splat (f32.mul (local.get $sw) (f32.load (i32.add (local.get $s1) (local.get $so))))))))
          (local.set $acc2
            (f32x4.add (local.get $acc2)
              (f32x4.mul (f32x4.convert_i32x4_s (local.get $d2))
                (f32x4.splat (f32.mul (local.get $sw) (f32.load (i32.add (local.get $s2) (local.get $so))))))))
          (br_if $group (i32.lt_u (local.get $o) (local.get $in_dim))))
        (f32.store (local.get $y_at)
          (f32.add (local.get $b)
            (f32.add
              (f32.add (f32x4.extract_lane 0 (local.get $acc0)) (f32x4.extract_lane 1 (local.get $acc0)))
              (f32.add (f32x4.extract_lane 2 (local.get $acc0)) (f32x4.extract_lane 3 (local.get $acc0))))))
        (f32.store (i32.add (local.get $y_at) (local.get $y_stride))
          (f32.add (local.get $b)
            (f32.add
              (f32.add (f32x4.extract_lane 0 (local.get $acc1)) (f32x4.extract_lane 1 (local.get $acc1)))
              (f32.add (f32x4.extract_lane 2 (local.get $acc1)) (f32x4.extract_lane 3 (local.get $acc1))))))
        (f32.store (i32.add (local.get $y_at) (i32.mul (local.get $y_stride) (i32.const 2)))
          (f32.add (local.get $b)
            (f32.add
              (f32.add (f32x4.extract_lane 0 (local.get $acc2)) (f32x4.extract_lane 1 (local.get $acc2)))
              (f32.add (f32x4.extract_lane 2 (local.get $acc2)) (f32x4.extract_lane 3 (local.get $acc2))))))
        (local.set $wp (i32.add (local.get $wp) (local.get $in_dim)))
        (local.set $sp (i32.add (local.get $sp) (local.get $scale_bytes)))
        (local.set $r (i32.add (local.get $r) (i32.const 1)))
        (br $row))))

  ;; q8_matvec for exactly 4 input vectors, in half groups as for 3.
  (func $q8_rows_4
    (param $w i32) (param $ws i32) (param $xq i32) (param $xs i32) (param $y i32) (param $bias i32)
    (param $in_dim i32) (param $row_start i32) (param $row_end i32) (param $out_dim i32)
    (local $r i32) (local $wp i32) (local $sp i32) (local $o i32) (local $so i32) (local $scale_bytes i32)
    (local $y_at i32) (local $y_stride i32) (local $b f32)
    (local $x1 i32) (local $s1 i32) (local $x2 i32) (local $s2 i32) (local $x3 i32) (local $s3 i32)
    (local $w0 v128) (local $w1 v128) (local $w2 v128) (local $w3 v128) (local $sw f32)
    (local $acc0 v128) (local $acc1 v128) (local $acc2 v128) (local $acc3 v128)
    (local $group_end i32) (local $d0 v128) (local $d1 v128) (local $d2 v128) (local $d3 v128)
    (local.set $scale_bytes (i32.shr_u (local.get $in_dim) (i32.const 3))) ;; (in_dim / 32) groups × 4 bytes
    (local.set $x1 (i32.add (local.get $xq) (local.get $in_dim)))
    (local.set $s1 (i32.add (local.get $xs) (local.get $scale_bytes)))
    (local.set $x2 (i32.add (local.get $x1) (local.get $in_dim)))
    (local.set $s2 (i32.add (local.get $s1) (local.get $scale_bytes)))
    (local.set $x3 (i32.add (local.get $x2) (local.get $in_dim)))
    (local.set $s3 (i32.add (local.get $s2) (local.get $scale_bytes)))
    (local.set $y_stride (i32.shl (local.get $out_dim) (i32.const 2)))
    (local.set $r (local.get $row_start))
    (local.set $wp (i32.add (local.get $w) (i32.mul (local.get $r) (local.get $in_dim))))
    (local.set $sp (i32.add (local.get $ws) (i32.mul (local.get $r) (local.get $scale_bytes))))
    (block $rows_done
      (loop $row
        (br_if $rows_done (i32.ge_u (local.get $r) (local.get $row_end)))
        (local.set $acc0 (v128.const i32x4 0 0 0 0))
        (local.set $acc1 (v128.const i32x4 0 0 0 0))
        (local.set $acc2 (v128.const i32x4 0 0 0 0))
        (local.set $acc3 (v128.const i32x4 0 0 0 0))
        (local.set $y_at (i32.add (local.get $y) (i32.shl (local.get $r) (i32.const 2))))
        (local.set $b (if (result f32) (local.get $bias)
          (then (f32.load (i32.add (local.get $bias) (i32.shl (local.get $r) (i32.const 2)))))
          (else (f32.const 0))))
        (local.set $o (i32.const 0))
        (loop $group
          (local.set $d0 (v128.const i32x4 0 0 0 0))
          (local.set $d1 (v128.const i32x4 0 0 0 0))
          (local.set $d2 (v128.const i32x4 0 0 0 0))
          (local.set $d3 (v128.const i32x4 0 0 0 0))
          (local.set $so (i32.shr_u (local.get $o) (i32.const 3)))
          (local.set $group_end (i32.add (local.get $o) (i32.const 32)))
          (loop $half
            (local.set $w0 (v128.load8x8_s offset=0 (i32.add (local.get $wp) (local.get $o))))
            (local.set $w1 (v128.load8x8_s offset=8 (i32.add (local.get $wp) (local.get $o))))
            (local.set $d0
              (i32x4.add (local.get $d0)
                (i32x4.add
                  (i32x4.dot_i16x8_s (local.get $w0) (v128.load8x8_s offset=0 (i32.add (local.get $xq) (local.get $o))))
                  (i32x4.dot_i16x8_s (local.get $w1) (v128.load8x8_s offset=8 (i32.add (local.get $xq) (local.get $o)))))))
            (local.set $d1
              (i32x4.add (local.get $d1)
                (i32x4.add
                  (i32x4.dot_i16x8_s (local.get $w0) (v128.load8x8_s offset=0 (i32.add (local.get $x1) (local.get $o))))
                  (i32x4.dot_i16x8_s (local.get $w1) (v128.load8x8_s offset=8 (i32.add (local.get $x1) (local.get $o)))))))
            (local.set $d2
              (i32x4.add (local.get $d2)
                (i32x4.add
                  (i32x4.dot_i16x8_s (local.get $w0) (v128.load8x8_s offset=0 (i32.add (local.get $x2) (local.get $o))))
                  (i32x4.dot_i16x8_s (local.get $w1) (v128.load8x8_s offset=8 (i32.add (local.get $x2) (local.get $o)))))))
            (local.set $d3
              (i32x4.add (local.get $d3)
                (i32x4.add
                  (i32x4.dot_i16x8_s (local.get $w0) (v128.load8x8_s offset=0 (i32.add (local.get $x3) (local.get $o))))
                  (i32x4.dot_i16x8_s (local.get $w1) (v128.load8x8_s offset=8 (i32.add (local.get $x3) (local.get $o)))))))
            (local.set $o (i32.add (local.get $o) (i32.const 16)))
            (br_if $half (i32.lt_u (local.get $o) (local.get $group_end))))
          (local.set $sw (f32.load (i32.add (local.get $sp) (local.get $so))))
          (local.set $acc0
            (f32x4.add (local.get $acc0)
              (f32x4.mul (f32x4.convert_i32x4_s (local.get $d0))
                (f32x4.splat (f32.mul (local.get $sw) (f32.load (i32.add (local.get $xs) (local.get $so))))))))
          (local.set $acc1
            (f32x4.add (local.get $acc1)
              (f32x4.mul (f32x4.convert_i32x4_s (local.get $d1))
                (f32x4.splat (f32.mul (local.get $sw) (f32.load (i32.add (local.get $s1) (local.get $so))))))))
          (local.set $acc2
            (f32x4.add (local.get $acc2)
              (f32x4.mul (f32x4.convert_i32x4_s (local.get $d2))
                (f32x4.splat (f32.mul (local.get $sw) (f32.load (i32.add (local.get $s2) (local.get $so))))))))
          (local.set $acc3
            (f32x4.add (local.get $acc3)
              (f32x4.mul (f32x4.convert_i32x4_s (local.get $d3))
                (f32x4.splat (f32.mul (local.get $sw) (f32.load (i32.add (local.get $s3) (local.get $so))))))))
          (br_if $group (i32.lt_u (local.get $o) (local.get $in_dim))))
        (f32.store (local.get $y_at)
          (f32.add (local.get $b)
            (f32.add
              (f32.add (f32x4.extract_lane 0 (local.get $acc0)) (f32x4.extract_lane 1 (local.get $acc0)))
              (f32.add (f32x4.extract_lane 2 (local.get $acc0)) (f32x4.extract_lane 3 (local.get $acc0))))))
        (f32.store (i32.add (local.get $y_at) (local.get $y_stride))
          (f32.add (local.get $b)
            (f32.add
              (f32.add (f32x4.extract_lane 0 (local.get $acc1)) (f32x4.extract_lane 1 (local.get $acc1)))
              (f32.add (f32x4.extract_lane 2 (local.get $acc1)) (f32x4.extract_lane 3 (local.get $acc1))))))
        (f32.store (i32.add (local.get $y_at) (i32.mul (local.get $y_stride) (i32.const 2)))
          (f32.add (local.get $b)
            (f32.add
              (f32.add (f32x4.extract_lane 0 (local.get $acc2)) (f32x4.extract_lane 1 (local.get $acc2)))
              (f32.add (f32x4.extract_lane 2 (local.get $acc2)) (f32x4.extract_lane 3 (local.get $acc2))))))
        (f32.store (i32.add (local.get $y_at) (i32.mul (local.get $y_stride) (i32.const 3)))
          (f32.add (local.get $b)
            (f32.add
              (f32.add (f32x4.extract_lane 0 (local.get $acc3)) (f32x4.extract_lane 1 (local.get $acc3)))
              (f32.add (f32x4.extract_lane 2 (local.get $acc3)) (f32x4.extract_lane 3 (local.get $acc3))))))
        (local.set $wp (i32.add (local.get $wp) (local.get $in_dim)))
        (local.set $sp (i32.add (local.get $sp) (local.get $scale_bytes)))
        (local.set $r (i32.add (local.get $r) (i32.const 1)))
        (br $row))))


  ;; y[j][r] = sum_i w[r][i] * x[j][i] (+ bias[r]) in float32, 16 weights per step: four independent
  ;; products per input vector, summed as a tree before they meet the running sum. One loop per batch size,
  ;; as for q8_matvec.
  (func (export "f32_matvec")
    (param $w i32) (param $y i32) (param $x i32) (param $bias i32)
    (param $in_dim i32) (param $row_start i32) (param $row_end i32) (param $n_x i32) (param $out_dim i32)
    (block $bad
      (block $four
        (block $three
          (block $two
            (block $one
              (br_table $bad $one $two $three $four $bad (local.get $n_x)))
            (call $f32_rows_1 (local.get $w) (local.get $y) (local.get $x) (local.get $bias)
              (local.get $in_dim) (local.get $row_start) (local.get $row_end) (local.get $out_dim))
            (return))
          (call $f32_rows_2 (local.get $w) (local.get $y) (local.get $x) (local.get $bias)
            (local.get $in_dim) (local.get $row_start) (local.get $row_end) (local.get $out_dim))
          (return))
        (call $f32_rows_3 (local.get $w) (local.get $y) (local.get $x) (local.get $bias)
          (local.get $in_dim) (local.get $row_start) (local.get $row_end) (local.get $out_dim))
        (return))
      (call $f32_rows_4 (local.get $w) (local.get $y) (local.get $x) (local.get $bias)
        (local.get $in_dim) (local.get $row_start) (local.get $row_end) (local.get $out_dim))
      (return))
    (unreachable))

  ;; f32_matvec for exactly 1 input vector.
  (func $f32_rows_1
    (param $w i32) (param $y i32) (param $x i32) (param $bias i32)
    (param $in_dim i32) (param $row_start i32) (param $row_end i32) (param $out_dim i32)
    (local $r i32) (local $wp i32) (local $o i32) (local $row_bytes i32)
    (local $y_at i32) (local $b f32)
    (local $w0 v128) (local $w1 v128) (local $w2 v128) (local $w3 v128)
    (local $acc0 v128)
    (local.set $row_bytes (i32.shl (local.get $in_dim) (i32.const 2)))
    (local.set $r (local.get $row_start))
    (local.set $wp (i32.add (local.get $w) (i32.mul (local.get $r) (local.get $row_bytes))))
    (block $rows_done
      (loop $row
        (br_if $rows_done (i32.ge_u (local.get $r) (local.get $row_end)))
        (local.set $acc0 (v128.const i32x4 0 0 0 0))
        (local.set $y_at (i32.add (local.get $y) (i32.shl (local.get $r) (i32.const 2))))
        (local.set $b (if (result f32) (local.get $bias)
          (then (f32.load (i32.add (local.get $bias) (i32.shl (local.get $r) (i32.const 2)))))
          (else (f32.const 0))))
        (local.set $o (i32.const 0))
        (loop $step
          (local.set $w0 (v128.load offset=0 (i32.add (local.get $wp) (local.get $o))))
          (local.set $w1 (v128.load offset=16 (i32.add (local.get $wp) (local.get $o))))
          (local.set $w2 (v128.load offset=32 (i32.add (local.get $wp) (local.get $o))))
          (local.set $w3 (v128.load offset=48 (i32.add (local.get $wp) (local.get $o))))
          (local.set $acc0
            (f32x4.add (local.get $acc0)
              (f32x4.add
                (f32x4.add
                  (f32x4.mul (local.get $w0) (v128.load offset=0 (i32.add (local.get $x) (local.get $o))))
                  (f32x4.mul (local.get $w1) (v128.load offset=16 (i32.add (local.get $x) (local.get $o)))))
                (f32x4.add
                  (f32x4.mul (local.get $w2) (v128.load offset=32 (i32.add (local.get $x) (local.get $o))))
                  (f32x4.mul (local.get $w3) (v128.load offset=48 (i32.add (local.get $x) (local.get $o))))))))
          (local.set $o (i32.add (local.get $o) (i32.const 64)))
          (br_if $step (i32.lt_u (local.get $o) (local.get $row_bytes))))
        (f32.store (local.get $y_at)
          (f32.add (local.get $b)
            (f32.add
              (f32.add (f32x4.extract_lane 0 (local.get $acc0)) (f32x4.extract_lane 1 (local.get $acc0)))
              (f32.add (f32x4.extract_lane 2 (local.get $acc0)) (f32x4.extract_lane 3 (local.get $acc0))))))
        (local.set $wp (i32.add (local.get $wp) (local.get $row_bytes)))
        (local.set $r (i32.add (local.get $r) (i32.const 1)))
        (br $row))))

  ;; f32_matvec for exactly 2 input vectors.
  (func $f32_rows_2
    (param $w i32) (param $y i32) (param $x i32) (param $bias i32)
    (param $in_dim i32) (param $row_start i32) (param $row_end i32) (param $out_dim i32)
    (local $r i32) (local $wp i32) (local $o i32) (local $row_bytes i32)
    (local $y_at i32) (local $y_stride i32) (local $b f32)
    (local $x1 i32)
    (local $w0 v128) (local $w1 v128) (local $w2 v128) (local $w3 v128)
    (local $acc0 v128) (local $acc1 v128)
    (local.set $row_bytes (i32.shl (local.get $in_dim) (i32.const 2)))
    (local.set $x1 (i32.add (local.get $x) (local.get $row_bytes)))
    (local.set $y_stride (i32.shl (local.get $out_dim) (i32.const 2)))
    (local.set $r (local.get $row_start))
    (local.set $wp (i32.add (local.get $w) (i32.mul (local.get $r) (local.get $row_bytes))))
    (block $rows_done
      (loop $row
        (br_if $rows_done (i32.ge_u (local.get $r) (local.get $row_end)))
        (local.set $acc0 (v128.const i32x4 0 0 0 0))
        (local.set $acc1 (v128.const i32x4 0 0 0 0))
        (local.set $y_at (i32.add (local.get $y) (i32.shl (local.get $r) (i32.const 2))))
        (local.set $b (if (result f32) (local.get $bias)
          (then (f32.load (i32.add (local.get $bias) (i32.shl (local.get $r) (i32.const 2)))))
          (else (f32.const 0))))
        (local.set $o (i32.const 0))
        (loop $step
          (local.set $w0 (v128.load offset=0 (i32.add (local.get $wp) (local.get $o))))
          (local.set $w1 (v128.load offset=16 (i32.add (local.get $wp) (local.get $o))))
          (local.set $w2 (v128.load offset=32 (i32.add (local.get $wp) (local.get $o))))
          (local.set $w3 (v128.load offset=48 (i32.add (local.get $wp) (local.get $o))))
          (local.set $acc0
            (f32x4.add (local.get $acc0)
              (f32x4.add
                (f32x4.add
                  (f32x4.mul (local.get $w0) (v128.load offset=0 (i32.add (local.get $x) (local.get $o))))
                  (f32x4.mul (local.get $w1) (v128.load offset=16 (i32.add (local.get $x) (local.get $o)))))
                (f32x4.add
                  (f32x4.mul (local.get $w2) (v128.load offset=32 (i32.add (local.get $x) (local.get $o))))
                  (f32x4.mul (local.get $w3) (v128.load offset=48 (i32.add (local.get $x) (local.get $o))))))))
          (local.set $acc1
            (f32x4.add (local.get $acc1)
              (f32x4.add
                (f32x4.add
                  (f32x4.mul (local.get $w0) (v128.load offset=0 (i32.add (local.get $x1) (local.get $o))))
                  (f32x4.mul (local.get $w1) (v128.load offset=16 (i32.add (local.get $x1) (local.get $o)))))
                (f32x4.add
                  (f32x4.mul (local.get $w2) (v128.load offset=32 (i32.add (local.get $x1) (local.get $o))))
                  (f32x4.mul (local.get $w3) (v128.load offset=48 (i32.add (local.get $x1) (local.get $o))))))))
          (local.set $o (i32.add (local.get $o) (i32.const 64)))
          (br_if $step (i32.lt_u (local.get $o) (local.get $row_bytes))))
        (f32.store (local.get $y_at)
          (f32.add (local.get $b)
            (f32.add
              (f32.add (f32x4.extract_lane 0 (local.get $acc0)) (f32x4.extract_lane 1 (local.get $acc0)))
              (f32.add (f32x4.extract_lane 2 (local.get $acc0)) (f32x4.extract_lane 3 (local.get $acc0))))))
        (f32.store (i32.add (local.get $y_at) (local.get $y_stride))
          (f32.add (local.get $b)
            (f32.add
              (f32.add (f32x4.extract_lane 0 (local.get $acc1)) (f32x4.extract_lane 1 (local.get $acc1)))
              (f32.add (f32x4.extract_lane 2 (local.get $acc1)) (f32x4.extract_lane 3 (local.get $acc1))))))
        (local.set $wp (i32.add (local.get $wp) (local.get $row_bytes)))
        (local.set $r (i32.add (local.get $r) (i32.const 1)))
        (br $row))))

  ;; f32_matvec for exactly 3 input vectors.
  (func $f32_rows_3
    (param $w i32) (param $y i32) (param $x i32) (param $bias i32)
    (param $in_dim i32) (param $row_start i32) (param $row_end i32) (param $out_dim i32)
    (local $r i32) (local $wp i32) (local $o i32) (local $row_bytes i32)
    (local $y_at i32) (local $y_stride i32) (local $b f32)
    (local $x1 i32) (local $x2 i32)
    (local $w0 v128) (local $w1 v128) (local $w2 v128) (local $w3 v128)
    (local $acc0 v128) (local $acc1 v128) (local $acc2 v128)
    (local.set $row_bytes (i32.shl (local.get $in_dim) (i32.const 2)))
    (local.set $x1 (i32.add (local.get $x) (local.get $row_bytes)))
    (local.set $x2 (i32.add (local.get $x1) (local.get $row_bytes)))
    (local.set $y_stride (i32.shl (local.get $out_dim) (i32.const 2)))
    (local.set $r (local.get $row_start))
    (local.set $wp (i32.add (local.get $w) (i32.mul (local.get $r) (local.get $row_bytes))))
    (block $rows_done
      (loop $row
        (br_if $rows_done (i32.ge_u (local.get $r) (local.get $row_end)))
        (local.set $acc0 (v128.const i32x4 0 0 0 0))
        (local.set $acc1 (v128.const i32x4 0 0 0 0))
        (local.set $acc2 (v128.const i32x4 0 0 0 0))
        (local.set $y_at (i32.add (local.get $y) (i32.shl (local.get $r) (i32.const 2))))
        (local.set $b (if (result f32) (local.get $bias)
          (then (f32.load (i32.add (local.get $bias) (i32.shl (local.get $r) (i32.const 2)))))
          (else (f32.const 0))))
        (local.set $o (i32.const 0))
        (loop $step
          (local.set $w0 (v128.load offset=0 (i32.add (local.get $wp) (local.get $o))))
          (local.set $w1 (v128.load offset=16 (i32.add (local.get $wp) (local.get $o))))
          (local.set $w2 (v128.load offset=32 (i32.add (local.get $wp) (local.get $o))))
          (local.set $w3 (v128.load offset=48 (i32.add (local.get $wp) (local.get $o))))
          (local.set $acc0
            (f32x4.add (local.get $acc0)
              (f32x4.add
                (f32x4.add
                  (f32x4.mul (local.get $w0) (v128.load offset=0 (i32.add (local.get $x) (local.get $o))))
                  (f32x4.mul (local.get $w1) (v128.load offset=16 (i32.add (local.get $x) (local.get $o)))))
                (f32x4.add
                  (f32x4.mul (local.get $w2) (v128.load offset=32 (i32.add (local.get $x) (local.get $o))))
                  (f32x4.mul (local.get $w3) (v128.load offset=48 (i32.add (local.get $x) (local.get $o))))))))
          (local.set $acc1
            (f32x4.add (local.get $acc1)
              (f32x4.add
                (f32x4.add
                  (f32x4.mul (local.get $w0) (v128.load offset=0 (i32.add (local.get $x1) (local.get $o))))
                  (f32x4.mul (local.get $w1) (v128.load offset=16 (i32.add (local.get $x1) (local.get $o)))))
                (f32x4.add
                  (f32x4.mul (local.get $w2) (v128.load offset=32 (i32.add (local.get $x1) (local.get $o))))
                  (f32x4.mul (local.get $w3) (v128.load offset=48 (i32.add (local.get $x1) (local.get $o))))))))
          (local.set $acc2
            (f32x4.add (local.get $acc2)
              (f32x4.add
                (f32x4.add
                  (f32x4.mul (local.get $w0) (v128.load offset=0 (i32.add (local.get $x2) (local.get $o))))
                  (f32x4.mul (local.get $w1) (v128.load offset=16 (i32.add (local.get $x2) (local.get $o)))))
                (f32x4.add
                  (f32x4.mul (local.get $w2) (v128.load offset=32 (i32.add (local.get $x2) (local.get $o))))
                  (f32x4.mul (local.get $w3) (v128.load offset=48 (i32.add (local.get $x2) (local.get $o))))))))
          (local.set $o (i32.add (local.get $o) (i32.const 64)))
          (br_if $step (i32.lt_u (local.get $o) (local.get $row_bytes))))
        (f32.store (local.get $y_at)
          (f32.add (local.get $b)
            (f32.add
              (f32.add (f32x4.extract_lane 0 (local.get $acc0)) (f32x4.extract_lane 1 (local.get $acc0)))
              (f32.add (f32x4.extract_lane 2 (local.get $acc0)) (f32x4.extract_lane 3 (local.get $acc0))))))
        (f32.store (i32.add (local.get $y_at) (local.get $y_stride))
          (f32.add (local.get $b)
            (f32.add
              (f32.add (f32x4.extract_lane 0 (local.get $acc1)) (f32x4.extract_lane 1 (local.get $acc1)))
              (f32.add (f32x4.extract_lane 2 (local.get $acc1)) (f32x4.extract_lane 3 (local.get $acc1))))))
        (f32.store (i32.add (local.get $y_at) (i32.mul (local.get $y_stride) (i32.const 2)))
          (f32.add (local.get $b)
            (f32.add
              (f32.add (f32x4.extract_lane 0 (local.get $acc2)) (f32x4.extract_lane 1 (local.get $acc2)))
              (f32.add (f32x4.extract_lane 2 (local.get $acc2)) (f32x4.extract_lane 3 (local.get $acc2))))))
        (local.set $wp (i32.add (local.get $wp) (local.get $row_bytes)))
        (local.set $r (i32.add (local.get $r) (i32.const 1)))
        (br $row))))

  ;; f32_matvec for exactly 4 input vectors.
  (func $f32_rows_4
    (param $w i32) (param $y i32) (param $x i32) (param $bias i32)
    (param $in_dim i32) (param $row_start i32) (param $row_end i32) (param $out_dim i32)
    (local $r i32) (local $wp i32) (local $o i32) (local $row_bytes i32)
    (local $y_at i32) (local $y_stride i32) (local $b f32)
    (local $x1 i32) (local $x2 i32) (local $x3 i32)
    (local $w0 v128) (local $w1 v128) (local $w2 v128) (local $w3 v128)
    (local $acc0 v128) (local $acc1 v128) (local $acc2 v128) (local $acc3 v128)
    (local.set $row_bytes (i32.shl (local.get $in_dim) (i32.const 2)))
    (local.set $x1 (i32.add (local.get $x) (local.get $row_bytes)))
    (local.set $x2 (i32.add (local.get $x1) (local.get $row_bytes)))
    (local.set $x3 (i32.add (local.get $x2) (local.get $row_bytes)))
    (local.set $y_stride (i32.shl (local.get $out_dim) (i32.const 2)))
    (local.set $r (local.get $row_start))
    (local.set $wp (i32.add (local.get $w) (i32.mul (local.get $r) (local.get $row_bytes))))
    (block $rows_done
      (loop $row
        (br_if $rows_done (i32.ge_u (local.get $r) (local.get $row_end)))
        (local.set $acc0 (v128.const i32x4 0 0 0 0))
        (local.set $acc1 (v128.const i32x4 0 0 0 0))
        (local.set $acc2 (v128.const i32x4 0 0 0 0))
        (local.set $acc3 (v128.const i32x4 0 0 0 0))
        (local.set $y_at (i32.add (local.get $y) (i32.shl (local.get $r) (i32.const 2))))
        (local.set $b (if (result f32) (local.get $bias)
          (then (f32.load (i32.add (local.get $bias) (i32.shl (local.get $r) (i32.const 2)))))
          (else (f32.const 0))))
        (local.set $o (i32.const 0))
        (loop $step
          (local.set $w0 (v128.load offset=0 (i32.add (local.get $wp) (local.get $o))))
          (local.set $w1 (v128.load offset=16 (i32.add (local.get $wp) (local.get $o))))
          (local.set $w2 (v128.load offset=32 (i32.add (local.get $wp) (local.get $o))))
          (local.set $w3 (v128.load offset=48 (i32.add (local.get $wp) (local.get $o))))
          (local.set $acc0
            (f32x4.add (local.get $acc0)
              (f32x4.add
                (f32x4.add
                  (f32x4.mul (local.get $w0) (v128.load offset=0 (i32.add (local.get $x) (local.get $o))))
                  (f32x4.mul (local.get $w1) (v128.load offset=16 (i32.add (local.get $x) (local.get $o)))))
                (f32x4.add
                  (f32x4.mul (local.get $w2) (v128.load offset=32 (i32.add (local.get $x) (local.get $o))))
                  (f32x4.mul (local.get $w3) (v128.load offset=48 (i32.add (local.get $x) (local.get $o))))))))
          (local.set $acc1
            (f32x4.add (local.get $acc1)
              (f32x4.add
                (f32x4.add
                  (f32x4.mul (local.get $w0) (v128.load offset=0 (i32.add (local.get $x1) (local.get $o))))
                  (f32x4.mul (local.get $w1) (v128.load offset=16 (i32.add (local.get $x1) (local.get $o)))))
                (f32x4.add
                  (f32x4.mul (local.get $w2) (v128.load offset=32 (i32.add (local.get $x1) (local.get $o))))
                  (f32x4.mul (local.get $w3) (v128.load offset=48 (i32.add (local.get $x1) (local.get $o))))))))
          (local.set $acc2
            (f32x4.add (local.get $acc2)
              (f32x4.add
                (f32x4.add
                  (f32x4.mul (local.get $w0) (v128.load offset=0 (i32.add (local.get $x2) (local.get $o))))
                  (f32x4.mul (local.get $w1) (v128.load offset=16 (i32.add (local.get $x2) (local.get $o)))))
                (f32x4.add
                  (f32x4.mul (local.get $w2) (v128.load offset=32 (i32.add (local.get $x2) (local.get $o))))
                  (f32x4.mul (local.get $w3) (v128.load offset=48 (i32.add (local.get $x2) (local.get $o))))))))
          (local.set $acc3
            (f32x4.add (local.get $acc3)
              (f32x4.add
                (f32x4.add
                  (f32x4.mul (local.get $w0) (v128.load offset=0 (i32.add (local.get $x3) (local.get $o))))
                  (f32x4.mul (local.get $w1) (v128.load offset=16 (i32.add (local.get $x3) (local.get $o)))))
                (f32x4.add
                  (f32x4.mul (local.get $w2) (v128.load offset=32 (i32.add (local.get $x3) (local.get $o))))
                  (f32x4.mul (local.get $w3) (v128.load offset=48 (i32.add (local.get $x3) (local.get $o))))))))
          (local.set $o (i32.add (local.get $o) (i32.const 64)))
          (br_if $step (i32.lt_u (local.get $o) (local.get $row_bytes))))
        (f32.store (local.get $y_at)
          (f32.add (local.get $b)
            (f32.add
              (f32.add (f32x4.extract_lane 0 (local.get $acc0)) (f32x4.extract_lane 1 (local.get $acc0)))
              (f32.add (f32x4.extract_lane 2 (local.get $acc0)) (f32x4.extract_lane 3 (local.get $acc0))))))
        (f32.store (i32.add (local.get $y_at) (local.get $y_stride))
          (f32.add (local.get $b)
            (f32.add
              (f32.add (f32x4.extract_lane 0 (local.get $acc1)) (f32x4.extract_lane 1 (local.get $acc1)))
              (f32.add (f32x4.extract_lane 2 (local.get $acc1)) (f32x4.extract_lane 3 (local.get $acc1))))))
        (f32.store (i32.add (local.get $y_at) (i32.mul (local.get $y_stride) (i32.const 2)))
          (f32.add (local.get $b)
            (f32.add
              (f32.add (f32x4.extract_lane 0 (local.get $acc2)) (f32x4.extract_lane 1 (local.get $acc2)))
              (f32.add (f32x4.extract_lane 2 (local.get $acc2)) (f32x4.extract_lane 3 (local.get $acc2))))))
        (f32.store (i32.add (local.get $y_at) (i32.mul (local.get $y_stride) (i32.const 3)))
          (f32.add (local.get $b)
            (f32.add
              (f32.add (f32x4.extract_lane 0 (local.get $acc3)) (f32x4.extract_lane 1 (local.get $acc3)))
              (f32.add (f32x4.extract_lane 2 (local.get $acc3)) (f32x4.extract_lane 3 (local.get $acc3))))))
        (local.set $wp (i32.add (local.get $wp) (local.get $row_bytes)))
        (local.set $r (i32.add (local.get $r) (i32.const 1)))
        (br $row))))

)
