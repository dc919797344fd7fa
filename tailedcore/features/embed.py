"""PatchCore-style locally aware patch features (docs/protocol.md §2.1), for any backbone with two stages."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def aggregate_patches(
    feature_maps: list[torch.Tensor], pretrain_dim: int, target_dim: int, patch_size: int = 3
) -> torch.Tensor:
    """Feature maps [(B, C_l, H_l, W_l)], the first on the finest grid -> patch features (B, H_0, W_0, target_dim).

    Each map is unfolded with a ``patch_size`` window (stride 1, zero padding) so every location holds
    C_l * k * k values (channel-major, then kernel row, then kernel column); coarser maps are bilinearly
    resized to the first map's grid (align_corners=False); each location's vector is adaptive-average
    pooled to ``pretrain_dim``; the layers are concatenated (first layer first) and pooled to ``target_dim``.
    """
    batch, _, height, width = feature_maps[0].shape
    pad = (patch_size - 1) // 2
    per_layer = []
    for fmap in feature_maps:
        channels, h, w = fmap.shape[1:]
        unfolded = F.unfold(fmap.float(), kernel_size=patch_size, padding=pad).reshape(batch, -1, h, w)
        if (h, w) != (height, width):
            unfolded = F.interpolate(unfolded, size=(height, width), mode="bilinear", align_corners=False)
        vectors = unfolded.permute(0, 2, 3, 1).reshape(-1, 1, channels * patch_size * patch_size)
        per_layer.append(F.adaptive_avg_pool1d(vectors, pretrain_dim))
    stacked = torch.cat(per_layer, dim=2)  # (B*H*W, 1, L*pretrain_dim)
    merged = F.adaptive_avg_pool1d(stacked, target_dim)
    return merged.reshape(batch, height, width, target_dim)
