"""Warm pools of execution environments: the protocol, `Lease` and `InitFailure` (`base.py`),
the per-version pools with concurrency limits (`pool.py`), their upkeep: idle reaping,
provisioned concurrency, memory pressure (`upkeep.py`), and pre-started spares for cold
starts (`prestart.py`).

May import: `runner.environments`, `runner.confinement`, `runner.model`, `runner.errors`,
`runner.settings`.
"""
