"""Real images: any mode, any shape, EXIF orientation, masks of any mode, the three geometries, defect coverage,
emptied masks, image-level-only datasets, and index checks that list every offender at once."""

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from real_fixtures import damage, write_real_folder

from tailedcore.data import folder_fingerprint, folder_has_masks
from tailedcore.data.coverage import coverage_messages, defect_coverage
from tailedcore.data.images import Geometry, load_image, load_mask, to_rgb
from tailedcore.data.index import DatasetLayoutError, build_mvtec_index
from tailedcore.evaluation.metrics import EvaluationSpec, auroc, evaluate_category

CROP = Geometry(mode="crop", resize=48, crop=48)
RESIZE = Geometry(mode="resize", size=(80, 48))
PAD = Geometry(mode="pad", size=(64, 64))


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return write_real_folder(tmp_path_factory.mktemp("real"))


@pytest.fixture(scope="module")
def index(folder):
    return build_mvtec_index(folder, ["photo", "strip"])


def test_index_reads_uppercase_extensions_exif_sizes_and_any_mask_name(index):
    photo = index[index["category"] == "photo"]
    assert len(photo) == 8 + 3 + 3 and photo["image_path"].str.endswith(".JPG").all()
    assert set(zip(photo["width"], photo["height"])) == {(64, 48)}  # EXIF orientation 6 applied: 48x64 stored
    defects = photo[photo["label"] == "dent"]
    assert defects["mask_path"].str.endswith("_mask.PNG").all()
    strip = index[index["category"] == "strip"]
    assert strip[["width", "height"]].drop_duplicates().shape[0] > 5  # many sizes in one class
    assert (strip["height"] / strip["width"] > 2.4).all()


def test_sixteen_bit_is_scaled_not_clipped(index):
    path = index[(index["category"] == "strip") & (index["split"] == "train")]["image_path"].iloc[0]
    with Image.open(path) as raw:
        assert raw.mode.startswith("I")
        source = np.asarray(raw).astype(np.float64)
    rgb = np.asarray(to_rgb(Image.open(path)))
    assert rgb.max() < 255 and rgb.min() > 0  # the old convert("RGB") clipped every pixel to 255
    np.testing.assert_allclose(rgb[..., 0], source / 257.0, atol=0.51)


def test_exif_rotation_applies_to_the_image(index):
    path = index[index["label"] == "dent"]["image_path"].iloc[0]
    image = load_image(path, Geometry(mode="resize", size=(48, 64)))
    assert image.shape == (48, 64, 3)
    # the red defect is at the bottom-left of the upright photo
    red = (image[..., 0] > 180) & (image[..., 1] < 80)
    rows, cols = np.nonzero(red)
    assert rows.min() > 30 and cols.max() < 20


@pytest.mark.parametrize("mode", ["P", "RGBA", "LA", "I;16", "CMYK"])
def test_any_mode_reads(tmp_path, mode):
    base = Image.fromarray(np.tile(np.arange(0, 250, 10, dtype=np.uint8), (20, 1)))
    image = base.convert(mode) if mode != "I;16" else Image.fromarray(np.asarray(base).astype(np.uint16) * 257)
    path = tmp_path / f"x.{'tif' if mode == 'CMYK' else 'png'}"
    image.save(path)
    rgb = load_image(path, Geometry(mode="resize", size=(20, 25)))
    assert rgb.shape == (20, 25, 3) and rgb.dtype == np.uint8
    assert abs(int(rgb[..., 0].max()) - 240) <= 16  # neither clipped nor lost


@pytest.mark.parametrize("geometry", [CROP, RESIZE, PAD], ids=["crop", "resize", "pad"])
def test_masks_of_any_mode_follow_the_geometry(index, geometry):
    for label in ("dent", "crack"):
        row = index[(index["label"] == label)].iloc[-1]
        mask = load_mask(row["mask_path"], geometry, "half")
        assert mask.shape == geometry.shape and mask.dtype == bool
        if geometry is not CROP:
            assert mask.any(), (label, geometry)


def test_geometry_shapes_and_padding():
    assert PAD.shape == (64, 64) and RESIZE.shape == (80, 48) and CROP.shape == (48, 48)
    valid = PAD.valid(40, 100)  # portrait 1:2.5 into a square: columns padded
    assert valid.shape == (64, 64) and valid[:, 32].all() and not valid[:, 0].any()
    assert valid.sum() == 64 * round(40 * 64 / 100)
    cells = PAD.valid_cells(40, 100, (8, 8))
    assert cells[:, 3:5].all() and not cells[:, 0].any()
    assert RESIZE.valid(40, 100).all() and CROP.valid_cells(40, 100, (6, 6)).all()
    with pytest.raises(ValueError, match="crop .* larger than .*resize"):
        Geometry(mode="crop", resize=64, crop=128)


def test_crop_geometry_equals_torchvision(tmp_path):
    from torchvision.transforms import CenterCrop, Resize

    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 255, (90, 130, 3), dtype=np.uint8))
    ours = np.asarray(Geometry(resize=64, crop=56).apply(image))
    theirs = CenterCrop(56)(Resize(64)(image))
    assert np.array_equal(ours, np.asarray(theirs))


def test_coverage_finds_defects_a_crop_cuts_away(index):
    cover_crop = defect_coverage(index, CROP, "exact_one")
    cover_pad = defect_coverage(index, PAD, "exact_one")
    strip_crop = cover_crop[cover_crop["category"] == "strip"]
    assert len(cover_crop) == 6
    assert strip_crop["source_empty"].sum() == 1  # the all-zero mask is reported
    lost_crop = (cover_crop["emptied"] & ~cover_crop["source_empty"]).sum()
    lost_pad = (cover_pad["emptied"] & ~cover_pad["source_empty"]).sum()
    assert lost_crop >= 1 and lost_pad == 0
    kept = cover_pad[~cover_pad["source_empty"]]["fraction_kept"]
    assert (kept > 0.3).all() and (kept <= 1).all()
    lines = coverage_messages(cover_crop, CROP)
    assert any(
        "strip:" in line and "lose every defect pixel under crop 48" in line and "consider" in line for line in lines
    )
    assert any("all-zero mask" in line and "s00_mask.png" in line for line in lines)


def test_index_lists_every_offender_at_once(tmp_path):
    root = write_real_folder(tmp_path / "broken")
    wrong, unreadable, missing = damage(root)
    with pytest.raises(DatasetLayoutError) as caught:
        build_mvtec_index(root, ["photo", "strip"])
    text = str(caught.value)
    assert "3 problem(s)" in text and missing in text and wrong in text and unreadable in text
    assert "is missing" in text and "a mask must have its image's size" in text and "unreadable image" in text


def test_image_labels_only(tmp_path):
    root = write_real_folder(tmp_path / "nomasks", masks=False)
    index = build_mvtec_index(root, ["photo", "strip"])
    assert (index["mask_path"] == "").all()
    assert not folder_has_masks({"kind": "folder", "path": str(root), "categories": ["photo", "strip"]})
    labels = ["good", "good", "dent", "dent"]
    values, emptied = evaluate_category(
        labels=labels,
        mask_paths=[""] * 4,
        sizes=np.array([[64, 48]] * 4),
        image_scores=np.array([0.1, 0.2, 0.9, 0.15]),
        patch_scores=np.zeros((4, 2, 2)),
        spec=EvaluationSpec(geometry=PAD, pixel=False, extra=True),
    )
    assert set(values) == {"image_auroc", "extra_image_f1_max"} and emptied == 0
    assert values["image_auroc"] == 0.75


def test_emptied_masks_are_kept_by_default_and_dropped_on_request(tmp_path):
    full = np.zeros((100, 40), np.uint8)
    full[2:8, 10:30] = 255  # at the top border: a 40x40 centre crop cuts it away
    Image.fromarray(full).save(tmp_path / "cut.png")
    inside = np.zeros((100, 40), np.uint8)
    inside[45:55, 10:30] = 255
    Image.fromarray(inside).save(tmp_path / "kept.png")
    geometry = Geometry(mode="crop", resize=40, crop=40)
    labels, masks = ["good", "good", "bad", "bad"], ["", "", str(tmp_path / "cut.png"), str(tmp_path / "kept.png")]
    sizes = np.array([[40, 100]] * 4)
    scores = np.array([0.5, 0.1, 0.2, 0.9])
    patches = np.zeros((4, 5, 5))
    patches[3, 2, 2] = 5.0
    args = {"labels": labels, "mask_paths": masks, "sizes": sizes, "image_scores": scores, "patch_scores": patches}
    keep, emptied = evaluate_category(**args, spec=EvaluationSpec(geometry=geometry, sigma=0))
    drop, _ = evaluate_category(**args, spec=EvaluationSpec(geometry=geometry, sigma=0, empty_masks="drop"))
    assert emptied == 1
    assert keep["image_auroc"] == pytest.approx(auroc([0, 0, 1, 1], scores))  # the original protocol
    assert drop["image_auroc"] == pytest.approx(auroc([0, 0, 1], scores[[0, 1, 3]]))
    assert np.isfinite(keep["pixel_auroc"]) and np.isfinite(drop["pixel_auroc"])


def test_padding_never_counts_in_pixel_metrics(tmp_path):
    mask = np.zeros((100, 40), np.uint8)
    mask[40:60, 10:30] = 255
    Image.fromarray(mask).save(tmp_path / "m.png")
    sizes = np.array([[40, 100], [40, 100]])
    patches = np.zeros((2, 8, 8))
    patches[1, 3:5, 3:5] = 1.0  # the defect
    high_padding = patches.copy()
    high_padding[:, :, 0] = 10.0  # padding columns scored very high: must not matter
    spec = EvaluationSpec(geometry=PAD, sigma=0, extra=True)
    args = {"labels": ["good", "bad"], "mask_paths": ["", str(tmp_path / "m.png")], "sizes": sizes, "spec": spec}
    clean, _ = evaluate_category(**args, image_scores=np.array([0.0, 1.0]), patch_scores=patches)
    noisy, _ = evaluate_category(**args, image_scores=np.array([0.0, 1.0]), patch_scores=high_padding)
    assert clean["pixel_auroc"] == pytest.approx(noisy["pixel_auroc"])
    assert clean["extra_pixel_aupro_fpr30"] == pytest.approx(noisy["extra_pixel_aupro_fpr30"])
    assert clean["extra_pixel_ap"] == pytest.approx(noisy["extra_pixel_ap"])


def test_mask_padding_scores_images_on_content_cells():
    from tailedcore.methods.base import Scores
    from tailedcore.stages.methods import mask_padding

    patch_scores = np.zeros((1, 8, 8), np.float32)
    patch_scores[0, :, 0] = 9.0  # padding column
    patch_scores[0, 4, 4] = 2.0
    out = mask_padding(Scores(np.array([9.0]), patch_scores), PAD, np.array([[40, 100]]))
    assert out.image_scores[0] == 2.0 and out.patch_scores[0, :, 0].max() == 0.0


def test_folder_fingerprint_follows_the_files(tmp_path):
    root = write_real_folder(tmp_path / "f")
    before = {c: folder_fingerprint(str(root), c) for c in ("photo", "strip")}
    Image.new("RGB", (64, 48)).save(root / "photo" / "train" / "good" / "new.png")
    after = {c: folder_fingerprint(str(root), c) for c in ("photo", "strip")}
    assert before["photo"] != after["photo"] and before["strip"] == after["strip"]
    (root / "photo" / "train" / "good" / "new.png").unlink()
    assert folder_fingerprint(str(root), "photo") == before["photo"]
    assert pd.notna(folder_fingerprint(str(root), "nothing"))
