"""The generic subprocess environment: one guest process per environment.

`environment.py` (`ProcessEnvironment`, and `ProcessRuntime`: what a language contributes),
`backend.py` (`ProcessBackend`), `channel.py` (`GuestChannel`: the frames and the log pipe
between host and guest), `frames.py` (the wire format, the host's only codec), `launch.py`
(how a guest process starts: spawn, gate, hello, init, written once for environments and the
Python zygote), `lambda_env.py` (the environment variables a guest sees). Python and Node.js
build on it through the `ProcessRuntime` interface.

May import: `runner.model`, `runner.errors`, `runner.settings`, `runner.confinement`,
`runner.environments.base`.
"""
