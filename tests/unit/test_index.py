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


def test_a_truncated_jpeg_is_found_by_the_index_with_every_other_offender(copy_of):
    root, _ = copy_of
    rng = np.random.default_rng(0)
    for name in ("010.jpg", "011.jpg"):  # two truncated JPEGs (an interrupted copy): both listed at once
        path = root / "fabric" / "train" / "good" / name
        Image.fromarray((rng.random((48, 48, 3)) * 255).astype(np.uint8)).save(path, quality=90)
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    whole = root / "washer" / "train" / "good" / "012.jpg"
    Image.fromarray((rng.random((48, 48, 3)) * 255).astype(np.uint8)).save(whole, quality=90)
    with pytest.raises(DatasetLayoutError) as caught:
        build_mvtec_index(root, ["fabric", "washer"])
    text = str(caught.value)
    for name in ("010.jpg", "011.jpg"):
        assert f"{name}: unreadable image (truncated JPEG: no end-of-image marker at its end" in text
    assert "012.jpg" not in text  # a whole JPEG passes


def _ringed_jpeg_mask(root):
    """Replace one PNG mask by the same mask saved as JPEG (ringing around its edges)."""
    png = root / "fabric" / "ground_truth" / "stain" / "000_mask.png"
    values = np.asarray(Image.open(png).convert("L"))
    png.unlink()
    jpeg = png.with_suffix(".jpg")
    Image.fromarray(values).save(jpeg, quality=75)
    ambiguous = np.asarray(Image.open(jpeg).convert("L"))
    return jpeg, int(np.count_nonzero((ambiguous > 0) & (ambiguous != ambiguous.max()))), int((ambiguous > 0).sum())


def test_a_lossy_mask_is_refused_with_its_ambiguous_pixels_or_binarised_when_the_config_says_so(copy_of):
    root, _ = copy_of
    jpeg, ambiguous, defect = _ringed_jpeg_mask(root)
    assert ambiguous > 0
    with pytest.raises(DatasetLayoutError) as caught:
        build_mvtec_index(root, ["fabric"])
    assert (
        f"{jpeg}: a JPEG mask (lossy compression): {ambiguous:,} of its {defect:,} pixels above 0 are ambiguous "
        "(neither 0 nor its largest value); save the masks as PNG with two values, or set the dataset's "
        "`odd_masks: binarize` to take every pixel above 0 as defect"
    ) in str(caught.value)
    index = build_mvtec_index(root, ["fabric"], odd_masks="binarize")
    assert index.attrs["notes"] == [
        f"1 mask(s) lossy or not two-valued ({ambiguous:,} ambiguous pixels) binarised at > 0 as the dataset's "
        f"`odd_masks: binarize` says, e.g. {jpeg}: a JPEG mask (lossy compression): {ambiguous:,} of its "
        f"{defect:,} pixels above 0 are ambiguous (neither 0 nor its largest value)"
    ]


def test_a_lossless_mask_with_grey_edges_is_not_two_valued(copy_of):
    root, _ = copy_of
    png = root / "fabric" / "ground_truth" / "stain" / "000_mask.png"
    values = np.asarray(Image.open(png).convert("L")).copy()
    values[values > 0] = 255
    values[0, :3] = 128  # three anti-aliased pixels
    Image.fromarray(values).save(png)
    with pytest.raises(DatasetLayoutError, match=r"000_mask\.png: the mask is not two-valued: 3 of its"):
        build_mvtec_index(root, ["fabric"])
    values[0, :3] = 1  # two values (0 and 1 only after setting the rest to 1): a clean mask passes
    values[values > 0] = 1
    Image.fromarray(values).save(png)
    build_mvtec_index(root, ["fabric"])
