"""TailSampler against its row-by-row reference."""

from __future__ import annotations

import numpy as np
from common import record, timed


def bench_tail(args):
    from reference import tail_neighbourhoods_per_row

    from tailedcore.samplers.tail import TailSamplerConfig, estimate_tail

    rng = np.random.default_rng(3)
    sizes = [905, 900, 542, 450, 450, 400, 300, 200, 100, 28, 19, 6]  # N = 4,300, VisA-like
    centres = rng.normal(size=(len(sizes), 256))
    embeddings = np.concatenate([c + 0.5 * rng.normal(size=(n, 256)) for c, n in zip(centres, sizes)])
    ours_seconds, estimate = timed(estimate_tail, embeddings, TailSamplerConfig(), repeat=2)

    def reference():
        from tailedcore.samplers.tail import class_size_list, tail_cut

        _, kappa = tail_neighbourhoods_per_row(embeddings)
        size_list = class_size_list(kappa)
        elbow, cap = tail_cut(size_list, 0.15)
        return kappa, kappa <= min(elbow, cap)

    ref_seconds, (kappa, mask) = timed(reference)
    same = bool(np.array_equal(kappa, estimate.class_sizes) and np.array_equal(mask, estimate.tail_mask))
    record("tail", "ours seconds", ours_seconds, detail=f"N={len(embeddings)}; identical output: {same}")
    record("tail", "per-row reference seconds", ref_seconds)
    record(
        "tail", "speed-up vs per-row reference", ref_seconds / ours_seconds, ">= 20", ref_seconds / ours_seconds >= 20
    )
    if not same:
        raise SystemExit("tail: vectorised TailSampler differs from the per-row reference")
