;; WASI command that tries to read the host's /etc/passwd through its only preopen (fd 3,
;; "/tmp") by escaping with "..", then by an absolute path. If either open succeeds it prints the
;; file (a sandbox escape the tests catch); when both are refused it says so on stderr and
;; exits 1.
(module
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read"
    (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 64) "../etc/passwd")
  (data (i32.const 96) "/etc/passwd")
  (data (i32.const 128) "read_host_file: access denied\n")
  (func $try (param $path i32) (param $len i32)
    (local $n i32)
    ;; rights: fd_read (bit 1)
    (if (i32.eqz (call $path_open (i32.const 3) (i32.const 0) (local.get $path) (local.get $len)
                     (i32.const 0) (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 16)))
      (then
        (i32.store (i32.const 0) (i32.const 1024))
        (i32.store (i32.const 4) (i32.const 60000))
        (drop (call $fd_read (i32.load (i32.const 16)) (i32.const 0) (i32.const 1) (i32.const 8)))
        (i32.store (i32.const 4) (i32.load (i32.const 8)))
        (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
        (call $proc_exit (i32.const 0)))))
  (func (export "_start")
    (call $try (i32.const 64) (i32.const 13))
    (call $try (i32.const 96) (i32.const 11))
    (i32.store (i32.const 0) (i32.const 128))
    (i32.store (i32.const 4) (i32.const 30))
    (drop (call $fd_write (i32.const 2) (i32.const 0) (i32.const 1) (i32.const 8)))
    (call $proc_exit (i32.const 1))))
