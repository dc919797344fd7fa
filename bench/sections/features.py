"""Feature cache throughput: the end-to-end rule against the bare backbone forward."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from common import record, timed


def bench_features(args, work: Path) -> np.ndarray:
    """End-to-end cache rule (decode, resize, forward, aggregate, write float16) vs the bare forward."""
    from tailedcore.data.images import Geometry
    from tailedcore.data.index import build_mvtec_index
    from tailedcore.data.synthetic import CATEGORIES, SyntheticSpec, write_dataset
    from tailedcore.features.cache import FeatureExtractor, extract_category
    from tailedcore.features.settings import FeatureSettings

    per_category = int(np.ceil(256 * args.scale / len(CATEGORIES)))  # a unified pool: every category
    root = work / "images"
    spec = SyntheticSpec(
        seed=11, image_size=args.image_size, n_train=per_category, n_test_good=1, n_test_defect_per_type=1
    )
    write_dataset(root, spec)
    index = build_mvtec_index(root, list(CATEGORIES))
    index = index.assign(category="pool")  # one cache file for the whole pool
    config = FeatureSettings(
        backbone="efficientnet_lite0",
        geometry=Geometry(resize=args.image_size, crop=args.image_size),
        pretrain_dim=256,
        target_dim=256,
        batch_size=32,
        device=args.device,
    )
    extractor = FeatureExtractor(config)
    extract_category(index.head(32), "pool", config, work / "warm", extractor, threads=args.threads)  # warm-up
    seconds, _ = timed(
        extract_category, index, "pool", config, work / "features", extractor, threads=args.threads, repeat=2
    )
    end_to_end = len(index) / seconds
    bare = _bare_forward_rate(extractor, len(index), args.image_size)
    record("features", "end-to-end images/s", end_to_end, detail=f"{len(index)} images {args.image_size}px")
    record("features", "bare forward images/s", bare)
    record("features", "end-to-end / bare forward", end_to_end / bare, ">= 0.8", end_to_end / bare >= 0.8)
    # real images are not square: the same images cut to 5:3 and letterboxed (pad) or squashed (resize)
    from PIL import Image

    wide = work / "wide"
    wide.mkdir(exist_ok=True)
    wide_paths = []
    for i, path in enumerate(index["image_path"]):
        with Image.open(path) as image:
            width, height = image.size
            strip = image.crop((0, height // 5, width, height - height // 5))  # 5:3
        strip.save(wide / f"{i}.png")
        wide_paths.append(str(wide / f"{i}.png"))
    wide_index = index.assign(image_path=wide_paths)
    for mode in ("pad", "resize"):
        geometry = Geometry(mode=mode, size=(args.image_size, args.image_size))
        mode_config = replace(config, geometry=geometry)
        seconds, _ = timed(
            extract_category, wide_index, "pool", mode_config, work / mode, extractor, threads=args.threads, repeat=2
        )
        rate = len(index) / seconds
        record(
            "features",
            f"{mode} geometry end-to-end / bare forward",
            rate / bare,
            ">= 0.8",
            rate / bare >= 0.8,
            detail=f"5:3 images into {args.image_size} x {args.image_size}: {rate:.1f} images/s",
        )
    _bench_wrn50(args, work, index)
    patches = np.load(work / "features" / "pool.patches.npy")
    return patches.reshape(-1, patches.shape[-1])


def _bench_wrn50(args, work: Path, index) -> None:
    """The paper's feature rule (wide_resnet50_2, resize 256, crop 224, 1024 + 1024 -> 1024) end to end, timed
    with the architecture's initial weights (the arithmetic does not depend on their values; the ImageNet
    file may not be on this machine): the rate the whole-run estimate takes for the features and for
    TailedCore's tail views."""
    from tailedcore.data.images import Geometry
    from tailedcore.features.backbones import untrained_backbone
    from tailedcore.features.cache import FeatureExtractor, extract_category
    from tailedcore.features.settings import FeatureSettings

    config = FeatureSettings(
        backbone="wide_resnet50_2",
        geometry=Geometry(resize=256, crop=224),
        dtype="float32",
        pretrain_dim=1024,
        target_dim=1024,
        batch_size=32,
        device=args.device,
    )
    extractor = FeatureExtractor(config, untrained_backbone("wide_resnet50_2"))
    images = index.head(64 * args.scale)
    extract_category(images.head(8), "pool", config, work / "wrn-warm", extractor, threads=args.threads)
    seconds, _ = timed(
        extract_category, images, "pool", config, work / "wrn", extractor, threads=args.threads, repeat=2
    )
    rate, bare = len(images) / seconds, _bare_forward_rate(extractor, len(images), 224)
    record(
        "features",
        "wide_resnet50_2 end-to-end images/s",
        rate,
        detail=f"{len(images)} images, resize 256 crop 224, 1024-d float32; bare forward {bare:.1f} images/s "
        f"(end-to-end / bare {rate / bare:.2f})",
    )


def _bare_forward_rate(extractor, count: int, size: int) -> float:
    """Images/s of the backbone's forward alone on ``count`` random size x size images in the extractor's
    batches, best of two: the reference of the end-to-end figures."""
    batch_size = extractor.config.batch_size
    batch = torch.randn(batch_size, 3, size, size, device=extractor.device)

    @torch.no_grad()
    def forwards():
        for _ in range(0, count, batch_size):
            extractor.backbone.forward(batch)

    seconds, _ = timed(forwards, repeat=2)
    return count / seconds
