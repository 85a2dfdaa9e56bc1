;; WASI command that grows its memory 1 MiB at a time, touching each new MiB, until memory.grow
;; fails; then it reports on stderr and aborts with `unreachable` (what C's malloc failure plus
;; abort() amounts to).
(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 64) "memory_hog: memory.grow failed\n")
  (func (export "_start")
    (local $old i32)
    (loop $more
      (local.set $old (memory.grow (i32.const 16)))
      (if (i32.ne (local.get $old) (i32.const -1))
        (then
          (i32.store (i32.mul (local.get $old) (i32.const 65536)) (local.get $old))
          (br $more))))
    (i32.store (i32.const 0) (i32.const 64))
    (i32.store (i32.const 4) (i32.const 31))
    (drop (call $fd_write (i32.const 2) (i32.const 0) (i32.const 1) (i32.const 8)))
    unreachable))
