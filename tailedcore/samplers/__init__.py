"""Floor 2: the samplers a method builds its memory bank with: the greedy coreset (greedy, kcenter),
position-wise LOF denoising (lof) and the TailSampler (tail)."""
