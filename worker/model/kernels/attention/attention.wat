;; One head of a decode step's attention, on the KV cache where TensorFlow.js keeps it: this module imports
;; the wasm backend's own memory, so keys and values are read in place (pointers are tfjs byte offsets).
;;
;;   attn_scores: out[j] = scale * (q . k[j])        for j < n      (k: n rows of d floats)
;;   attn_mix:    out    = sum_j p[j] * v[j]                        (v: n rows of d floats)
;; The softmax between them stays in JavaScript (n exps; wasm has no exp instruction).
;; d must be a positive multiple of 8 (two 4-wide lanes per step); GPT-2's head width is 64.
;; Sums are float32 (as the tf-op path's), in 8 lanes.
;;
;; Built with `node scripts/build-kernels.mjs` (wabt, SIMD enabled) into attention.wasm beside this file, and
;; into attention.shared.wasm for a backend whose heap is shared (worker/wasm-shared-heap.ts):
;; build: also shared
(module
  (import "env" "memory" (memory 1))

  (func (export "attn_scores") (param $q i32) (param $k i32) (param $n i32) (param $d i32) (param $scale f32) (param $out i32)
    (local $row_bytes i32) (local $end i32) (local $i i32)
    (local $a0 v128) (local $a1 v128) (local $s v128)
    (local.set $row_bytes (i32.shl (local.get $d) (i32.const 2)))
    (local.set $end (i32.add (local.get $out) (i32.shl (local.get $n) (i32.const 2))))
    (block $done
      (loop $rows
        (br_if $done (i32.ge_u (local.get $out) (local.get $end)))
        (local.set $a0 (v128.const f32x4 0 0 0 0))
        (local.set $a1 (v128.const f32x4 0 0 0 0))
        (local.set $i (i32.const 0))
        (loop $cols
          (local.set $a0 (f32x4.add (local.get $a0)
            (f32x4.mul (v128.load (i32.add (local.get $q) (local.get $i))) (v128.load (i32.add (local.get $k) (local.get $i))))))
          (local.set $a1 (f32x4.add (local.get $a1)
            (f32x4.mul (v128.load offset=16 (i32.add (local.get $q) (local.get $i))) (v128.load offset=16 (i32.add (local.get $k) (local.get $i))))))
          (local.set $i (i32.add (local.get $i) (i32.const 32)))
          (br_if $cols (i32.lt_u (local.get $i) (local.get $row_bytes))))
        (local.set $s (f32x4.add (local.get $a0) (local.get $a1)))
        (f32.store (local.get $out)
          (f32.mul (local.get $scale)
            (f32.add
              (f32.add (f32x4.extract_lane 0 (local.get $s)) (f32x4.extract_lane 1 (local.get $s)))
              (f32.add (f32x4.extract_lane 2 (local.get $s)) (f32x4.extract_lane 3 (local.get $s))))))
        (local.set $k (i32.add (local.get $k) (local.get $row_bytes)))
        (local.set $out (i32.add (local.get $out) (i32.const 4)))
        (br $rows))))

  (func (export "attn_mix") (param $p i32) (param $v i32) (param $n i32) (param $d i32) (param $out i32)
    (local $row_bytes i32) (local $end i32) (local $i i32) (local $w v128)
    (local.set $row_bytes (i32.shl (local.get $d) (i32.const 2)))
    (local.set $i (i32.const 0))
    (loop $zero
      (v128.store (i32.add (local.get $out) (local.get $i)) (v128.const f32x4 0 0 0 0))
      (v128.store offset=16 (i32.add (local.get $out) (local.get $i)) (v128.const f32x4 0 0 0 0))
      (local.set $i (i32.add (local.get $i) (i32.const 32)))
      (br_if $zero (i32.lt_u (local.get $i) (local.get $row_bytes))))
    (local.set $end (i32.add (local.get $p) (i32.shl (local.get $n) (i32.const 2))))
    (block $done
      (loop $rows
        (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
        (local.set $w (v128.load32_splat (local.get $p)))
        (local.set $i (i32.const 0))
        (loop $cols
          (v128.store (i32.add (local.get $out) (local.get $i))
            (f32x4.add (v128.load (i32.add (local.get $out) (local.get $i)))
              (f32x4.mul (local.get $w) (v128.load (i32.add (local.get $v) (local.get $i))))))
          (v128.store offset=16 (i32.add (local.get $out) (local.get $i))
            (f32x4.add (v128.load offset=16 (i32.add (local.get $out) (local.get $i)))
              (f32x4.mul (local.get $w) (v128.load offset=16 (i32.add (local.get $v) (local.get $i))))))
          (local.set $i (i32.add (local.get $i) (i32.const 32)))
          (br_if $cols (i32.lt_u (local.get $i) (local.get $row_bytes))))
        (local.set $v (i32.add (local.get $v) (local.get $row_bytes)))
        (local.set $p (i32.add (local.get $p) (i32.const 4)))
        (br $rows))))
)
