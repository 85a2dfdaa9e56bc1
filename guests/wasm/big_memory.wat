;; Bad input for a 128 MB function: its minimum memory (256 MiB) exceeds the limit.
(module
  (memory (export "memory") 4096)
  (func (export "_start")))
