"""The cost of the diagnostics: what the provenance adds to a TailedCore fit (building it, writing it), and the
evaluation-stage job that reads it, against the fit itself."""

from __future__ import annotations

import numpy as np
import torch
from common import record, timed


def bench_diagnostics(args, work):
    from PIL import Image

    from tailedcore.data.images import Geometry
    from tailedcore.evaluation.diagnostics import run_diagnostics, view_truth
    from tailedcore.methods.base import FeatureSet, Provenance, build_method
    from tailedcore.scores import read_provenance, write_provenance

    rng = np.random.default_rng(0)
    grid, dim = (28, 28), 256
    sizes = [120, 100, 80, 4, 4, 4]  # three head classes, three tail classes of 4 images
    images = sum(sizes) * args.scale
    labels = np.repeat(np.arange(len(sizes)), np.array(sizes) * args.scale)
    centres = 3 * rng.normal(size=(len(sizes), dim)).astype(np.float32)
    bases = rng.normal(size=(len(sizes), 4, dim)).astype(np.float32)
    latent = rng.random((images, *grid, 4), dtype=np.float32)
    patches = centres[labels][:, None, None] + np.einsum("nhwk,nkd->nhwd", latent, bases[labels])  # a 4-d manifold
    patches = (patches + 1e-3 * rng.standard_normal(patches.shape, dtype=np.float32)).astype(np.float32)
    embeddings = (centres[labels] + 0.05 * rng.standard_normal((images, dim))).astype(np.float32)
    train = FeatureSet([f"i{k}" for k in range(images)], patches, embeddings)
    train.augment = lambda rows, kind: np.repeat(patches[rows], 7, axis=0)  # 7 rotflip views per tail image
    model = build_method("tailedcore", {"tail_augmentation": "rotflip"}, torch.Generator().manual_seed(0))
    fit_seconds, report = timed(model.fit, train)
    origin = model.provenance
    cells = grid[0] * grid[1]
    tail = np.flatnonzero(origin.tail_predicted)
    tail_rows = report["tail_memory_size"]
    chosen = origin.image[tail_rows:].astype(np.int64) * cells + origin.cell[tail_rows:]

    def build():  # the provenance work inside the fit: the same constructors on the same selections
        parts = [
            Provenance.of_views(np.arange(tail_rows), tail.tolist(), cells, len(tail) * 7 * cells, "rotflip"),
            Provenance.of_rows(chosen, cells),
        ]
        return Provenance.concat(parts, filter_score=origin.filter_score, filter_kept=origin.filter_kept)

    build_seconds, _ = timed(build, repeat=3)
    path = work / "tailedcore.bank.npz"
    ids = train.image_ids
    write_seconds, _ = timed(write_provenance, path, origin, image_ids=ids, grid=grid, repeat=3)
    noise = rng.random(images) < 0.05
    truth = {
        "image_ids": np.array(ids),
        "category": np.array([f"c{k}" for k in labels]),
        "class_role": np.where(np.array(sizes)[labels] <= 4, "tail", "head"),
        "role": np.where(noise, "noise", "clean"),
        "defect_fraction": np.where(noise[:, None, None], rng.choice([0.0, 0.3, 1.0], (images, *grid)), 0.0),
        "mask_known": np.ones(images, bool),
    }
    mask = np.zeros((256, 256), np.uint8)
    mask[100:140, 30:200] = 255  # every noise image's mask, written once: its views are read and transformed
    Image.fromarray(mask).save(work / "mask.png")
    masks = {row: str(work / "mask.png") for row in np.flatnonzero(noise)}
    geometry = Geometry("resize", size=(224, 224))
    diagnose_seconds, _ = timed(
        lambda: run_diagnostics(truth, read_provenance(path), view_truth(masks, geometry, grid))
    )
    added = (build_seconds + write_seconds) / fit_seconds
    size = path.stat().st_size / 2**20
    detail = f"{images * cells:,} training patches, memory {len(origin.image):,} rows, {size:.1f} MiB file"
    record("diagnostics", "fit seconds", fit_seconds, detail=detail)
    record("diagnostics", "provenance build + write seconds", build_seconds + write_seconds)
    record("diagnostics", "added to a fit (%)", 100 * added, "<= 5", added <= 0.05)
    record("diagnostics", "diagnose job seconds (evaluation stage)", diagnose_seconds, detail="no fit rerun")
    record("diagnostics", "diagnose / fit (%)", 100 * diagnose_seconds / fit_seconds)
