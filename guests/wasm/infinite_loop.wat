;; WASI command that never returns: only the epoch deadline stops it.
(module
  (memory (export "memory") 1)
  (func (export "_start")
    (loop $forever (br $forever))))
