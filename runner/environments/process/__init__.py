"""The generic subprocess environment: one guest process per environment.

`environment.py` (`ProcessEnvironment`, `ProcessRuntime`, `ProcessBackend`), `channel.py`
(frames and the log pipe between host and guest), `frames.py` (the wire format), `launch.py`
(how a guest process starts and is placed in its confinement). Python and Node.js build on it
through the `ProcessRuntime` interface.

May import: `runner.model`, `runner.errors`, `runner.settings`, `runner.confinement`,
`runner.environments.base`.
"""
