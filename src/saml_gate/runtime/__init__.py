"""Wiring and where work runs: the core, the verification workers, background jobs."""
