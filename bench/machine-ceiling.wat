;; Probes of what a core can do at the moment, for bench/machine-ceiling.ts: the rate of the instruction the
;; prompt kernels spend their time in (f32x4.relaxed_madd, f32-fma.wat) with nothing else in the loop, the
;; rate of the prompt kernel's own mix of loads and multiply-adds on data in L1, and the rate of reading
;; memory in long sequential streams (what a decode step does with the weights).
;; Assembled at bench time with scripts/build-kernels.mjs's assembleWat (shared memory), not shipped.
(module
  (import "env" "memory" (memory 1))

  ;; n iterations of 10 independent multiply-add chains (ten accumulators cover the instruction's latency on
  ;; both FMA pipes). The operands come from memory at 0 and 16 so that nothing is known at compile time; the
  ;; result depends on every chain so that none is dropped.
  (func (export "fma") (param $n i32) (result f32)
    (local $b v128) (local $c v128)
    (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128) (local $a4 v128)
    (local $a5 v128) (local $a6 v128) (local $a7 v128) (local $a8 v128) (local $a9 v128)
    (local.set $b (v128.load (i32.const 0)))
    (local.set $c (v128.load (i32.const 16)))
    (loop $again
      (local.set $a0 (f32x4.relaxed_madd (local.get $a0) (local.get $b) (local.get $c)))
      (local.set $a1 (f32x4.relaxed_madd (local.get $a1) (local.get $b) (local.get $c)))
      (local.set $a2 (f32x4.relaxed_madd (local.get $a2) (local.get $b) (local.get $c)))
      (local.set $a3 (f32x4.relaxed_madd (local.get $a3) (local.get $b) (local.get $c)))
      (local.set $a4 (f32x4.relaxed_madd (local.get $a4) (local.get $b) (local.get $c)))
      (local.set $a5 (f32x4.relaxed_madd (local.get $a5) (local.get $b) (local.get $c)))
      (local.set $a6 (f32x4.relaxed_madd (local.get $a6) (local.get $b) (local.get $c)))
      (local.set $a7 (f32x4.relaxed_madd (local.get $a7) (local.get $b) (local.get $c)))
      (local.set $a8 (f32x4.relaxed_madd (local.get $a8) (local.get $b) (local.get $c)))
      (local.set $a9 (f32x4.relaxed_madd (local.get $a9) (local.get $b) (local.get $c)))
      (br_if $again (local.tee $n (i32.sub (local.get $n) (i32.const 1)))))
    (f32x4.extract_lane 0
      (f32x4.add
        (f32x4.add (f32x4.add (local.get $a0) (local.get $a1)) (f32x4.add (local.get $a2) (local.get $a3)))
        (f32x4.add
          (f32x4.add (f32x4.add (local.get $a4) (local.get $a5)) (f32x4.add (local.get $a6) (local.get $a7)))
          (f32x4.add (local.get $a8) (local.get $a9))))))

  ;; The prompt kernel's inner loop (f32-fma.wat's tile4x8: two loads of w, four of x broadcast, eight
  ;; multiply-adds a step, the same pointer arithmetic) `passes` times over 256 steps of data that stays in L1
  ;; (a 4 KiB x block at byte 4096, an 8 KiB panel at 8192). What the kernel could do at best, with no misses.
  (func (export "tile") (param $passes i32) (result f32)
    (local $x i32) (local $p i32) (local $w0 v128) (local $w1 v128) (local $s v128)
    (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128)
    (local $a4 v128) (local $a5 v128) (local $a6 v128) (local $a7 v128)
    (loop $pass
      (local.set $x (i32.const 4096))
      (local.set $p (i32.const 8192))
      (loop $step
        (local.set $w0 (v128.load (local.get $p)))
        (local.set $w1 (v128.load offset=16 (local.get $p)))
        (local.set $s (v128.load32_splat (local.get $x)))
        (local.set $a0 (f32x4.relaxed_madd (local.get $s) (local.get $w0) (local.get $a0)))
        (local.set $a1 (f32x4.relaxed_madd (local.get $s) (local.get $w1) (local.get $a1)))
        (local.set $s (v128.load32_splat offset=4 (local.get $x)))
        (local.set $a2 (f32x4.relaxed_madd (local.get $s) (local.get $w0) (local.get $a2)))
        (local.set $a3 (f32x4.relaxed_madd (local.get $s) (local.get $w1) (local.get $a3)))
        (local.set $s (v128.load32_splat offset=8 (local.get $x)))
        (local.set $a4 (f32x4.relaxed_madd (local.get $s) (local.get $w0) (local.get $a4)))
        (local.set $a5 (f32x4.relaxed_madd (local.get $s) (local.get $w1) (local.get $a5)))
        (local.set $s (v128.load32_splat offset=12 (local.get $x)))
        (local.set $a6 (f32x4.relaxed_madd (local.get $s) (local.get $w0) (local.get $a6)))
        (local.set $a7 (f32x4.relaxed_madd (local.get $s) (local.get $w1) (local.get $a7)))
        (local.set $p (i32.add (local.get $p) (i32.const 32)))
        (local.set $x (i32.add (local.get $x) (i32.const 16)))
        (br_if $step (i32.lt_u (local.get $p) (i32.const 16384))))
      (br_if $pass (local.tee $passes (i32.sub (local.get $passes) (i32.const 1)))))
    (f32x4.extract_lane 0
      (f32x4.add
        (f32x4.add (f32x4.add (local.get $a0) (local.get $a1)) (f32x4.add (local.get $a2) (local.get $a3)))
        (f32x4.add (f32x4.add (local.get $a4) (local.get $a5)) (f32x4.add (local.get $a6) (local.get $a7))))))

  ;; The float32 sum of bytes [from, to) (a multiple of 64 apart), read once, 64 bytes a step in four chains.
  (func (export "read") (param $from i32) (param $to i32) (result f32)
    (local $s0 v128) (local $s1 v128) (local $s2 v128) (local $s3 v128)
    (block $done
      (br_if $done (i32.ge_u (local.get $from) (local.get $to)))
      (loop $again
        (local.set $s0 (f32x4.add (local.get $s0) (v128.load (local.get $from))))
        (local.set $s1 (f32x4.add (local.get $s1) (v128.load offset=16 (local.get $from))))
        (local.set $s2 (f32x4.add (local.get $s2) (v128.load offset=32 (local.get $from))))
        (local.set $s3 (f32x4.add (local.get $s3) (v128.load offset=48 (local.get $from))))
        (local.set $from (i32.add (local.get $from) (i32.const 64)))
        (br_if $again (i32.lt_u (local.get $from) (local.get $to)))))
    (local.set $s0 (f32x4.add (f32x4.add (local.get $s0) (local.get $s1)) (f32x4.add (local.get $s2) (local.get $s3))))
    (f32.add
      (f32.add (f32x4.extract_lane 0 (local.get $s0)) (f32x4.extract_lane 1 (local.get $s0)))
      (f32.add (f32x4.extract_lane 2 (local.get $s0)) (f32x4.extract_lane 3 (local.get $s0)))))
)
