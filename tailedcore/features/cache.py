"""Per-category feature cache: computed once per image, shared by every split, seed and method.

Files for one ``(dataset, backbone, category)`` under ``results/{dataset}/features/{backbone}/``:
``{category}.patches.npy`` (N, h, w, d) in ``features.dtype`` (float16 by default), ``{category}.global.npy``
(N, G) float32 and ``{category}.ids.json`` (the N image ids as one JSON list, in row order: any legal file name
survives, spaces, newlines and unicode included).
"""

from __future__ import annotations

import json
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..data.images import ImageReadError, load_image
from ..runtime.compute import resolve_device
from ..runtime.io import DamagedFileError, load_array, rebuild_hint
from ..runtime.logs import ProgressLog
from .backbones import Backbone, load_backbone
from .embed import aggregate_patches
from .rows import CachedArray, PatchRows
from .settings import FeatureSettings

log = logging.getLogger(__name__)


class FeatureExtractor:
    """Normalised image batches -> (patch features (B, h, w, d), global embeddings (B, G))."""

    def __init__(self, config: FeatureSettings, backbone: Backbone | None = None):
        self.config = config
        self.device = resolve_device(config.device)
        self.backbone = backbone or load_backbone(config.backbone, config.weights)
        self.backbone.model.to(self.device)
        self.mean = torch.tensor(self.backbone.mean, device=self.device).view(1, 3, 1, 1)
        self.std = torch.tensor(self.backbone.std, device=self.device).view(1, 3, 1, 1)
        # letterbox padding in the backbone's mean colour: it normalises to zero
        self.fill = tuple(int(round(255 * m)) for m in self.backbone.mean)

    @torch.no_grad()
    def __call__(self, images_uint8: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """images_uint8: (B, H, W, 3) RGB uint8."""
        batch = torch.from_numpy(np.ascontiguousarray(images_uint8)).to(self.device)
        batch = (batch.permute(0, 3, 1, 2).float() / 255.0 - self.mean) / self.std
        maps, global_embedding = self.backbone.forward(batch)
        patches = aggregate_patches(maps, self.config.pretrain_dim, self.config.target_dim, self.config.patch_size)
        return patches.cpu().numpy(), global_embedding.float().cpu().numpy()


def cache_paths(folder: str | Path, category: str) -> dict[str, Path]:
    folder = Path(folder)
    return {
        "patches": folder / f"{category}.patches.npy",
        "global": folder / f"{category}.global.npy",
        "ids": folder / f"{category}.ids.json",
    }


def write_ids(path: str | Path, image_ids: list[str]) -> None:
    """The image ids of a cache, in row order, as one JSON list (never split on whitespace)."""
    Path(path).write_text(json.dumps([str(i) for i in image_ids], ensure_ascii=False) + "\n", encoding="utf-8")


def read_ids(path: str | Path) -> list[str]:
    """The ids :func:`write_ids` wrote; a missing or damaged file names the rule that rebuilds it."""
    path = Path(path)
    try:
        ids = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DamagedFileError(f"{path} (feature cache ids) is missing; {rebuild_hint(path)}") from None
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise DamagedFileError(f"{path} (feature cache ids) is damaged ({err}); {rebuild_hint(path)}") from None
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise DamagedFileError(f"{path} (feature cache ids) is not a JSON list of image ids; {rebuild_hint(path)}")
    return ids


def extract_category(
    index: pd.DataFrame,
    category: str,
    config: FeatureSettings,
    folder: str | Path,
    extractor: FeatureExtractor | None = None,
    threads: int = 1,
) -> dict:
    """Write the cache files of one category (every image of its index rows, train and test)."""
    rows = index[index["category"] == category]
    if rows.empty:
        raise ValueError(f"category {category!r} has no rows in the index")
    extractor = extractor or FeatureExtractor(config)
    paths = cache_paths(folder, category)
    paths["patches"].parent.mkdir(parents=True, exist_ok=True)
    image_paths = rows["image_path"].tolist()
    started = time.perf_counter()
    patches_out = global_out = None
    bs = config.batch_size
    geometry, failures = config.geometry, []

    def load(path):
        try:
            return load_image(path, geometry, extractor.fill)
        except ImageReadError as err:
            failures.append(str(err))
            return None

    # written under temporary names, renamed into place once complete: a killed job never leaves a
    # complete-looking cache file
    partial = {key: path.with_name(f".{path.name}.partial{path.suffix}") for key, path in paths.items()}
    progress = ProgressLog(f"features of {category}: images", len(image_paths))
    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        pending = pool.map(load, image_paths)
        for start in range(0, len(image_paths), bs):
            progress.update(start)
            loaded = [next(pending) for _ in range(min(bs, len(image_paths) - start))]
            if failures:  # keep reading to list every unreadable image at once
                continue
            images = np.stack(loaded)
            patches, global_embedding = extractor(images)
            if patches_out is None:
                patches_out = np.lib.format.open_memmap(
                    partial["patches"], mode="w+", dtype=config.dtype, shape=(len(image_paths),) + patches.shape[1:]
                )
                global_out = np.zeros((len(image_paths), global_embedding.shape[1]), dtype=np.float32)
            patches_out[start : start + len(images)] = patches.astype(config.dtype)
            global_out[start : start + len(images)] = global_embedding
    if failures:
        del patches_out
        partial["patches"].unlink(missing_ok=True)
        raise ImageReadError(
            f"{len(failures)} image(s) of category {category} cannot be read:\n  " + "\n  ".join(failures)
        )
    patches_out.flush()
    del patches_out
    np.save(partial["global"], global_out)
    write_ids(partial["ids"], rows["image_id"].tolist())
    for key in ("ids", "global", "patches"):
        os.replace(partial[key], paths[key])
    seconds = time.perf_counter() - started
    log.info("%s: %d images in %.1f s (%.1f images/s)", category, len(image_paths), seconds, len(image_paths) / seconds)
    return {"category": category, "images": len(image_paths), "seconds": seconds}


class FeatureStore:
    """Read access to the cached features of a dataset, by image id. Patches are read on demand through
    short-lived maps (:mod:`tailedcore.features.rows`): a job holds only the patches it asked for."""

    def __init__(self, folder: str | Path, categories: list[str]):
        self.patches, self.global_embeddings, self.rows = {}, {}, {}
        self.categories = list(categories)
        for category in categories:
            paths = cache_paths(folder, category)
            patches = CachedArray(paths["patches"], "patch feature cache")
            embeddings = load_array(paths["global"], "global embedding cache")
            ids = read_ids(paths["ids"])
            if len(patches.shape) != 4 or not (len(ids) == len(patches) == len(embeddings)):
                raise DamagedFileError(
                    f"the feature cache of {category} in {folder} does not fit together: {len(ids)} ids in "
                    f"{paths['ids']}, patches {patches.shape} in {paths['patches']}, global {embeddings.shape}; "
                    f"{rebuild_hint(paths['patches'])}"
                )
            self.patches[category], self.global_embeddings[category] = patches, embeddings
            self.rows[category] = {image_id: row for row, image_id in enumerate(ids)}

    def _locate(self, image_ids: list[str], categories: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(category number, row in that category's cache) of every image."""
        number = {category: i for i, category in enumerate(self.categories)}
        try:
            which = np.array([number[c] for c in categories], dtype=np.int64)
            rows = np.array([self.rows[c][i] for i, c in zip(image_ids, categories)], dtype=np.int64)
        except KeyError as err:
            raise KeyError(
                f"image {err.args[0]} has no cached features; the feature cache is stale: rerun the features rule"
            ) from err
        return which, rows

    def patch_rows(self, image_ids: list[str], categories: list[str]) -> PatchRows:
        """(n, h, w, d) patches in the order of ``image_ids``, read on demand (a fit's training pool)."""
        which, rows = self._locate(image_ids, categories)
        return PatchRows([self.patches[c] for c in self.categories], which, rows)

    def patch_features(self, image_ids: list[str], categories: list[str]) -> np.ndarray:
        """(n, h, w, d) in the cache's dtype (float16: half the memory; methods compute in float32 chunks),
        in the order of ``image_ids``."""
        return self.patch_rows(image_ids, categories).read()

    def global_features(self, image_ids: list[str], categories: list[str]) -> np.ndarray:
        which, rows = self._locate(image_ids, categories)
        out = np.empty((len(rows), next(iter(self.global_embeddings.values())).shape[1]), dtype=np.float32)
        for number, category in enumerate(self.categories):
            hits = np.flatnonzero(which == number)
            out[hits] = self.global_embeddings[category][rows[hits]]
        return out
