"""Floor 3: TailedCore, PatchCore, SoftPatch and PaDiM behind one protocol (base: fit(train) -> report,
score(test) -> Scores, and the registry)."""
