import shutil

import numpy as np
import pytest
from PIL import Image

from tailedcore.data.images import Geometry, ImageReadError, load_image, load_mask
from tailedcore.data.index import DatasetLayoutError, build_mvtec_index


def test_index_lists_every_image_once(tiny_dataset):
    root, spec = tiny_dataset
    index = build_mvtec_index(root, spec.categories)
    assert index["image_id"].is_unique
    per_category = index.groupby(["category", "split"]).size()
    for category in spec.categories:
        assert per_category[(category, "train")] == spec.n_train
        assert per_category[(category, "test")] == spec.n_test_good + 3 * spec.n_test_defect_per_type
    anomalous = index[(index["split"] == "test") & (index["label"] != "good")]
    assert (anomalous["mask_path"] != "").all()
    assert (index.loc[index["label"] == "good", "mask_path"] == "").all()


@pytest.fixture
def copy_of(tiny_dataset, tmp_path):
    root, spec = tiny_dataset
    target = tmp_path / "data"
    shutil.copytree(root, target)
    return target, spec


def test_missing_mask_names_the_file_and_the_fix(copy_of):
    root, spec = copy_of
    mask = root / "fabric" / "ground_truth" / "stain" / "000_mask.png"
    mask.unlink()
    with pytest.raises(DatasetLayoutError, match=r"000.png is missing: add .*000_mask\.png"):
        build_mvtec_index(root, spec.categories)


def test_category_without_test_folder(copy_of):
    root, spec = copy_of
    shutil.rmtree(root / "washer" / "test")
    with pytest.raises(DatasetLayoutError, match=r"washer/test is missing"):
        build_mvtec_index(root, spec.categories)


def test_unknown_category(copy_of):
    root, _ = copy_of
    with pytest.raises(DatasetLayoutError, match=r"\['teapot'\] are not folders"):
        build_mvtec_index(root, ["fabric", "teapot"])


def test_corrupt_image_names_the_file(copy_of):
    root, _ = copy_of
    image = root / "fabric" / "train" / "good" / "000.png"
    image.write_bytes(b"not a png")
    with pytest.raises(ImageReadError, match=r"000\.png is not a readable image"):
        load_image(image, Geometry(resize=48, crop=48))


def test_masks_are_binarised_before_resizing(tmp_path):
    raw = np.zeros((40, 60), np.uint8)
    raw[10:30, 20:40] = 3  # VisA-style small class id, not 255
    Image.fromarray(raw).save(tmp_path / "m.png")
    mask = load_mask(tmp_path / "m.png", Geometry(resize=40, crop=40))
    assert mask.shape == (40, 40) and mask.dtype == bool
    # no resize (shorter side is already 40); the centre crop keeps columns 10..49 of 60
    assert mask.sum() == 400 and mask[10:30, 10:30].all()
