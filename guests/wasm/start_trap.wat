;; Bad input: a module whose start function traps, so it can never be instantiated.
(module
  (memory (export "memory") 1)
  (func $boom unreachable)
  (start $boom)
  (func (export "_start")))
