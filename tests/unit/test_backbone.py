import numpy as np
import pytest
import torch
from PIL import Image

from tailedcore.data.images import Geometry
from tailedcore.features.backbones import WeightsNotFoundError, load_backbone, wrn50_weights_path
from tailedcore.features.cache import FeatureExtractor
from tailedcore.features.embed import aggregate_patches
from tailedcore.features.settings import FeatureSettings


@pytest.fixture(scope="module")
def lite0():
    return load_backbone("efficientnet_lite0")


def test_offline_backbone_recognises_coffee(lite0):
    from skimage import data
    from timm.data import ImageNetInfo

    image = np.array(Geometry(resize=256, crop=224).apply(Image.fromarray(data.coffee())))
    batch = (torch.from_numpy(image).permute(2, 0, 1).float()[None] / 255 - 0.5) / 0.5
    with torch.no_grad():
        top = lite0.model(batch).softmax(-1)[0].topk(3)
    names = [ImageNetInfo().index_to_description(i) for i in top.indices.tolist()]
    assert names[0] in {"espresso", "cup", "coffee mug"}, names
    assert top.values[0] > 0.5


def test_feature_extractor_shapes(lite0):
    extractor = FeatureExtractor(
        FeatureSettings(geometry=Geometry(resize=64, crop=64), pretrain_dim=32, target_dim=48), lite0
    )
    patches, global_embedding = extractor(np.zeros((2, 64, 64, 3), np.uint8))
    assert patches.shape == (2, 8, 8, 48)  # stride-8 grid
    assert global_embedding.shape == (2, 1280)


def test_aggregation_without_resizing_is_a_local_mean():
    # one layer, pretrain_dim = C*9/9 averages each channel's 3x3 window (zero padded) ...
    fmap = torch.arange(2 * 5 * 5, dtype=torch.float32).reshape(1, 2, 5, 5)
    patches = aggregate_patches([fmap], pretrain_dim=2, target_dim=2)
    expected = torch.nn.functional.avg_pool2d(fmap, 3, stride=1, padding=1, count_include_pad=True)
    torch.testing.assert_close(patches[0].permute(2, 0, 1), expected[0])


def test_missing_wrn_weights_say_what_to_fetch(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with pytest.raises(WeightsNotFoundError, match=r"wide_resnet50_2-95faca4d\.pth.*features\.weights"):
        wrn50_weights_path(None)


def test_aggregation_matches_the_closed_form_of_the_paper_pipeline():
    """wide_resnet50_2 dimensions (docs/protocol.md §2.1): layer2 512x28x28, layer3 1024x14x14, 1024 + 1024 -> 1024."""
    gen = torch.Generator().manual_seed(0)
    layer2 = torch.randn(1, 512, 28, 28, generator=gen)
    layer3 = torch.randn(1, 1024, 14, 14, generator=gen)
    patches = aggregate_patches([layer2, layer3], pretrain_dim=1024, target_dim=1024)[0]  # (28, 28, 1024)
    window_sum = torch.nn.functional.avg_pool2d(layer2, 3, 1, 1, count_include_pad=True)[0] * 9
    first = (window_sum + layer2[0]) / 10  # 3x3 mean with the centre counted twice
    avg3 = torch.nn.functional.avg_pool2d(layer3, 3, 1, 1, count_include_pad=True)[0]
    pairs = 0.5 * (avg3[0::2] + avg3[1::2])
    second = torch.nn.functional.interpolate(pairs[None], size=(28, 28), mode="bilinear", align_corners=False)[0]
    expected = torch.cat([first, second]).permute(1, 2, 0)
    torch.testing.assert_close(patches, expected, rtol=1e-4, atol=1e-5)


def _patchcore_aggregation(feature_maps, pretrain_dim, target_dim):
    """The original's formulation: F.unfold, channels-first bilinear resize, transpose, adaptive pools."""
    functional = torch.nn.functional
    batch, _, height, width = feature_maps[0].shape
    per_layer = []
    for fmap in feature_maps:
        channels, h, w = fmap.shape[1:]
        unfolded = functional.unfold(fmap, kernel_size=3, padding=1).reshape(batch, -1, h, w)
        if (h, w) != (height, width):
            unfolded = functional.interpolate(unfolded, size=(height, width), mode="bilinear", align_corners=False)
        vectors = unfolded.permute(0, 2, 3, 1).reshape(-1, 1, channels * 9)
        per_layer.append(functional.adaptive_avg_pool1d(vectors, pretrain_dim))
    merged = functional.adaptive_avg_pool1d(torch.cat(per_layer, dim=2), target_dim)
    return merged.reshape(batch, height, width, target_dim)


@pytest.mark.parametrize(
    "shapes, dims",
    [
        (((2, 512, 28, 28), (2, 1024, 14, 14)), (1024, 1024)),  # wide_resnet50_2 at 224
        (((3, 40, 23, 31), (3, 112, 12, 16)), (256, 256)),  # lite0 on a non-square, odd grid
        (((2, 7, 5, 9), (2, 5, 3, 4)), (16, 8)),
    ],
)
def test_aggregation_is_the_original_pipeline_bit_for_bit(shapes, dims):
    """The cached features must not move with the layout the aggregation computes in: equal, not close."""
    gen = torch.Generator().manual_seed(1)
    maps = [torch.randn(shape, generator=gen) for shape in shapes]
    assert torch.equal(aggregate_patches(maps, *dims), _patchcore_aggregation(maps, *dims))
