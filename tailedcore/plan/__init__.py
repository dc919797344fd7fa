"""Floor 5: what the Snakefile asks before any job runs: the validated config, its paths and targets (workflow)
and the cost model behind ``check``'s time estimate (estimate)."""
