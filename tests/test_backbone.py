import numpy as np
import pytest
import torch
from PIL import Image

from tailedcore.data.images import resize_crop
from tailedcore.features.backbones import WeightsNotFoundError, load_backbone, wrn50_weights_path
from tailedcore.features.cache import FeatureConfig, FeatureExtractor
from tailedcore.features.embed import aggregate_patches


@pytest.fixture(scope="module")
def lite0():
    return load_backbone("efficientnet_lite0")


def test_offline_backbone_recognises_coffee(lite0):
    from skimage import data
    from timm.data import ImageNetInfo

    image = np.array(resize_crop(Image.fromarray(data.coffee()), 256, 224))
    batch = (torch.from_numpy(image).permute(2, 0, 1).float()[None] / 255 - 0.5) / 0.5
    with torch.no_grad():
        top = lite0.model(batch).softmax(-1)[0].topk(3)
    names = [ImageNetInfo().index_to_description(i) for i in top.indices.tolist()]
    assert names[0] in {"espresso", "cup", "coffee mug"}, names
    assert top.values[0] > 0.5


def test_feature_extractor_shapes(lite0):
    extractor = FeatureExtractor(FeatureConfig(resize=64, crop=64, pretrain_dim=32, target_dim=48), lite0)
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
