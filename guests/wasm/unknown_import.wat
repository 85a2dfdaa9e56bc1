;; Bad input: a valid module importing a host function the runner does not provide.
(module
  (import "env" "host_secret" (func $host_secret (result i32)))
  (memory (export "memory") 1)
  (func (export "_start") (drop (call $host_secret))))
