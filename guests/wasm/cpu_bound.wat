;; Reactor doing CPU work: reads the decimal digits of its event as n (e.g. {"n": 5000000}) and
;; runs n xorshift steps; answers {"n":N,"result":X}. An event without digits is answered with an
;; error document. Used to measure the CPU share a function gets.
(module
  (memory (export "memory") 1)
  (data (i32.const 256) "{\"n\":")
  (data (i32.const 320) ",\"result\":")
  (data (i32.const 384) "{\"errorMessage\":\"event has no digits; send {\\\"n\\\": 1000}\",\"errorType\":\"BadRequest\"}")
  (func $utoa (param $v i64) (param $dst i32) (result i32)
    (local $n i32)
    (loop $digit
      (i32.store8 (i32.add (i32.const 200) (local.get $n))
        (i32.add (i32.const 48) (i32.wrap_i64 (i64.rem_u (local.get $v) (i64.const 10)))))
      (local.set $n (i32.add (local.get $n) (i32.const 1)))
      (local.set $v (i64.div_u (local.get $v) (i64.const 10)))
      (br_if $digit (i64.ne (local.get $v) (i64.const 0))))
    (loop $copy
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (i32.store8 (local.get $dst) (i32.load8_u (i32.add (i32.const 200) (local.get $n))))
      (local.set $dst (i32.add (local.get $dst) (i32.const 1)))
      (br_if $copy (local.get $n)))
    (local.get $dst))
  (func (export "alloc") (param $size i32) (result i32)
    (local $need i32)
    (local.set $need (i32.shr_u (i32.add (i32.add (i32.const 4096) (local.get $size))
                                         (i32.const 65535)) (i32.const 16)))
    (if (i32.gt_u (local.get $need) (memory.size))
      (then
        (if (i32.eq (memory.grow (i32.sub (local.get $need) (memory.size))) (i32.const -1))
          (then (return (i32.const 0))))))
    (i32.const 4096))
  (func (export "handle") (param $ptr i32) (param $len i32) (result i64)
    (local $i i32) (local $c i32) (local $n i64) (local $n0 i64) (local $digits i32) (local $x i64)
    (local $end i32)
    (block $parsed
      (loop $scan
        (br_if $parsed (i32.ge_u (local.get $i) (local.get $len)))
        (local.set $c (i32.load8_u (i32.add (local.get $ptr) (local.get $i))))
        (if (i32.and (i32.ge_u (local.get $c) (i32.const 48)) (i32.le_u (local.get $c) (i32.const 57)))
          (then
            (local.set $n (i64.add (i64.mul (local.get $n) (i64.const 10))
                                   (i64.extend_i32_u (i32.sub (local.get $c) (i32.const 48)))))
            (local.set $digits (i32.add (local.get $digits) (i32.const 1)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $scan)))
    (if (i32.eqz (local.get $digits))
      (then
        (return (i64.or (i64.const 0x8000000000000000)
                        (i64.or (i64.shl (i64.const 384) (i64.const 32)) (i64.const 83))))))
    (local.set $n0 (local.get $n))
    (local.set $x (i64.const 88172645463325252))
    (block $done
      (loop $work
        (br_if $done (i64.eqz (local.get $n)))
        (local.set $x (i64.xor (local.get $x) (i64.shl (local.get $x) (i64.const 13))))
        (local.set $x (i64.xor (local.get $x) (i64.shr_u (local.get $x) (i64.const 7))))
        (local.set $x (i64.xor (local.get $x) (i64.shl (local.get $x) (i64.const 17))))
        (local.set $n (i64.sub (local.get $n) (i64.const 1)))
        (br $work)))
    (local.set $end (call $utoa (local.get $n0) (i32.const 261)))
    (local.set $end (call $copy10 (local.get $end)))
    (local.set $end (call $utoa (local.get $x) (local.get $end)))
    (i32.store8 (local.get $end) (i32.const 125))
    (i64.or (i64.shl (i64.const 256) (i64.const 32))
            (i64.extend_i32_u (i32.sub (i32.add (local.get $end) (i32.const 1)) (i32.const 256)))))
  ;; copies the 10-byte ",\"result\":" from 320 to $dst
  (func $copy10 (param $dst i32) (result i32)
    (i64.store (local.get $dst) (i64.load (i32.const 320)))
    (i32.store16 (i32.add (local.get $dst) (i32.const 8)) (i32.load16_u (i32.const 328)))
    (i32.add (local.get $dst) (i32.const 10))))
