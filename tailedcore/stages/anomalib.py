"""Stage function of rules/baselines/anomalib.smk: any anomalib image model as a baseline on the benchmark's splits
(docs/baselines.md, "anomalib models as baselines"; the pieces: :mod:`tailedcore.baselines.anomalib_bridge`).

Each entry of ``methods.anomalib`` is a method of its own. Its model is fitted on a run's training pool (every
class together, the injected noise included, no class labels) and scores the run's test images under the
benchmark's protocol: the images on the dataset's geometry (no resize of anomalib's own, no validation split
taken from the test images), the model's raw image score and anomaly map, and the same evaluation as every
other method. anomalib is an optional extra (``pip install -e '.[anomalib]'``), imported inside the function.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import asdict
from pathlib import Path

from ..baselines.anomalib_bridge import (
    AnomalibEntry,
    Images,
    backbone_state,
    build_model,
    maps_on_geometry,
    return_large_blocks,
    set_references,
)
from ..data.images import Geometry


def run_anomalib(
    *,
    entry: dict,
    seed: int,
    manifest_path,
    index_path,
    geometry: Geometry,
    setting: tuple[str, str],
    scores_path,
    report_path,
    threads: int,
    device: str = "cpu",
) -> dict:
    """Fit an anomalib model on a split's training pool and score its test images (the score contract)."""
    import resource
    import tempfile

    import anomalib
    import torch
    from anomalib.engine import Engine
    from lightning.pytorch import seed_everything
    from torch.utils.data import DataLoader

    from .. import __version__
    from ..data.index import read_index
    from ..data.longtail import read_manifest
    from ..runtime.compute import set_threads
    from ..scores import write_scores

    set_threads(threads)
    return_large_blocks()
    entry = AnomalibEntry.of(entry)
    state, sha256 = backbone_state(entry)  # before any work: a missing or wrong file stops the job here
    seed_everything(seed, workers=True, verbose=False)
    manifest, index = read_manifest(manifest_path), read_index(index_path).set_index("image_id")
    train = manifest[manifest["subset"] == "train"]
    test = manifest[manifest["subset"] == "test"]
    fill = tuple(int(round(255 * m)) for m in entry.normalisation()[0])
    loader = {"batch_size": entry.batch_size, "collate_fn": Images.collate, "num_workers": 0}
    accelerator = "gpu" if device != "cpu" and torch.cuda.is_available() else "cpu"
    prefix = f".{entry.name}-"  # Lightning's scratch, beside the scores; a killed job's is removed by the next
    for stale in Path(scores_path).parent.glob(f"{prefix}*"):
        shutil.rmtree(stale, ignore_errors=True)
    with tempfile.TemporaryDirectory(prefix=prefix, dir=Path(scores_path).parent) as scratch:
        model = build_model(entry, state)
        if entry.reference_images:  # few-shot: k training images drawn with the model seed, pre-processed
            set_references(model, entry, train=train, index=index, geometry=geometry, fill=fill, seed=seed)
        engine = Engine(
            max_epochs=entry.epochs,
            accelerator=accelerator,
            devices=1,
            logger=False,
            default_root_dir=scratch,
            enable_progress_bar=False,
            enable_model_summary=False,
            num_sanity_val_steps=0,
        )
        engine._should_run_validation = lambda *_: False  # no validation split: scores stay raw, not normalised
        started = time.perf_counter()
        from anomalib import LearningType

        if model.learning_type not in (LearningType.ZERO_SHOT, LearningType.FEW_SHOT):
            train_images = Images(index.loc[train["image_id"], "image_path"].tolist(), geometry, fill)
            engine.fit(model, train_dataloaders=DataLoader(train_images, shuffle=True, **loader))
        fit_seconds = time.perf_counter() - started
        started = time.perf_counter()
        test_images = Images(index.loc[test["image_id"], "image_path"].tolist(), geometry, fill)
        batches = engine.predict(model, dataloaders=DataLoader(test_images, **loader), return_predictions=True)
        test_seconds = time.perf_counter() - started
    sizes = index.loc[test["image_id"], ["width", "height"]].to_numpy()
    image_scores, maps = maps_on_geometry(batches, geometry, sizes)
    report = {
        "method": entry.name,
        "anomalib_model": entry.model,
        "anomalib_version": anomalib.__version__,
        "entry": asdict(entry),
        "model_config": {k: str(v) for k, v in dict(getattr(model, "hparams", {})).items()},
        "backbone": entry.backbone,
        "weights": entry.weights_tag,
        "weights_sha256": sha256,
        "learning_type": str(model.learning_type.value),
        "train_images": int(len(train)),
        "test_images": int(len(test)),
        "fit_seconds": fit_seconds,
        "test_seconds": test_seconds,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "model_seed": seed,
        "dataset": setting[0],
        "tail": setting[1],
        "geometry": geometry.describe(),
        "tailedcore_version": __version__,
        "torch": torch.__version__,
        "device": accelerator,
        "threads": threads,
    }
    write_scores(
        scores_path,
        report_path,
        image_ids=test["image_id"].tolist(),
        image_scores=image_scores,
        patch_scores=maps,
        report=report,
    )
    return report
