;; Reactor (see docs/guest-abi.md): a counter in a global that persists across warm invocations
;; of one environment. Answers {"count":N} and logs "counter: call N" on stderr.
(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (global $count (mut i64) (i64.const 0))
  (data (i32.const 256) "{\"count\":")
  (data (i32.const 512) "counter: call ")
  ;; Scratch for digits at 200..220; response at 256; log line at 512; events from 4096 up.
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
  ;; One event at a time: the arena restarts at 4096 on every alloc, growing memory if needed.
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
    (local $end i32)
    (global.set $count (i64.add (global.get $count) (i64.const 1)))
    ;; log line
    (local.set $end (call $utoa (global.get $count) (i32.const 526)))
    (i32.store8 (local.get $end) (i32.const 10))
    (i32.store (i32.const 0) (i32.const 512))
    (i32.store (i32.const 4) (i32.sub (i32.add (local.get $end) (i32.const 1)) (i32.const 512)))
    (drop (call $fd_write (i32.const 2) (i32.const 0) (i32.const 1) (i32.const 8)))
    ;; response
    (local.set $end (call $utoa (global.get $count) (i32.const 265)))
    (i32.store8 (local.get $end) (i32.const 125))
    (i64.or (i64.shl (i64.const 256) (i64.const 32))
            (i64.extend_i32_u (i32.sub (i32.add (local.get $end) (i32.const 1)) (i32.const 256))))))
