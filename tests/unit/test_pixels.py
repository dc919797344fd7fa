"""Pixel metrics at native resolution (tailedcore.evaluation.pixels): the inverse geometry, exact streamed metrics, and
a thin scratch that the model's grid loses and native resolution finds."""

import numpy as np
import pytest
from PIL import Image
from sklearn.metrics import average_precision_score, roc_auc_score

from tailedcore.data.images import Geometry, read_mask
from tailedcore.evaluation.metrics import EvaluationSpec, evaluate_category, pixel_metrics
from tailedcore.evaluation.pixels import PixelCounter, native_map


def streamed(images):
    """PixelCounter over (scores, mask) pairs, fed image by image in its two passes."""
    counter = PixelCounter()
    for scores, mask in images:
        counter.add_defects(scores, mask)
    counter.freeze()
    for scores, mask in images:
        counter.add_normals(scores[~mask])
    return counter


@pytest.mark.parametrize("levels", [None, 7])  # continuous scores, and heavy ties across both classes
def test_streamed_metrics_equal_scikit_learn_and_the_one_sort_reference(levels):
    rng = np.random.default_rng(0)
    images = []
    for shape in [(20, 30), (17, 9), (40, 12), (8, 8)]:
        mask = np.zeros(shape, bool)
        mask[rng.integers(shape[0]) :, : rng.integers(1, shape[1])] = rng.random() < 0.8
        mask[rng.integers(shape[0]), :] |= rng.random() < 0.5  # a thin line: its own region
        scores = rng.normal(size=shape).astype(np.float32) + 1.5 * mask
        if levels:
            scores = np.round(scores * 2).astype(np.float32) / 2
        images.append((scores, mask))
    labels = np.concatenate([m.ravel() for _, m in images])
    values = np.concatenate([s.ravel() for s, _ in images]).astype(np.float64)
    got = streamed(images).result(extra=True)
    assert got["auroc"] == pytest.approx(roc_auc_score(labels, values), abs=1e-9)
    assert got["ap"] == pytest.approx(average_precision_score(labels, values), abs=1e-9)
    # AUPRO: the one-sort reference on the same pixels, regions per image (padded side by side, apart)
    width = max(s.shape[1] for s, _ in images) + 1
    truth = np.zeros((len(images), 40, width), bool)
    maps = np.full(truth.shape, np.float32(-1e9))
    valid = np.zeros(truth.shape, bool)
    for i, (scores, mask) in enumerate(images):
        truth[i, : mask.shape[0], : mask.shape[1]] = mask
        maps[i, : mask.shape[0], : mask.shape[1]] = scores
        valid[i, : mask.shape[0], : mask.shape[1]] = True
    reference = pixel_metrics(truth, maps, valid, extra=True)
    assert got["aupro"] == pytest.approx(reference["aupro"], abs=1e-9)
    assert got["auroc"] == pytest.approx(reference["auroc"], abs=1e-9)


def test_counter_needs_both_classes():
    counter = streamed([(np.zeros((3, 3), np.float32), np.zeros((3, 3), bool))])
    with pytest.raises(ValueError, match="both classes"):
        counter.result()


def test_native_map_undoes_each_geometry():
    # resize: a map that is linear across the grid comes back linear over the native width
    geometry = Geometry(mode="resize", size=(8, 16))
    model = np.tile(np.arange(16, dtype=np.float32), (8, 1))
    back = native_map(model, geometry, width=64, height=40)
    assert back.shape == (40, 64)
    assert np.all(np.diff(back[0]) >= 0) and back[0, 0] == 0 and back[0, -1] == 15
    # pad: a 100 x 50 (w x h) image letterboxed into 32 x 32: the padding is cut off, none of its value returns
    geometry = Geometry(mode="pad", size=(32, 32))
    _, (left, top, right, bottom) = geometry.layout(100, 50)
    model = np.full((32, 32), 99.0, np.float32)
    model[top:bottom, left:right] = 1.0
    back = native_map(model, geometry, width=100, height=50)
    assert back.shape == (50, 100) and np.all(back == 1.0)
    # crop: what lies outside the centre crop gets the image's lowest score
    geometry = Geometry(mode="crop", resize=32, crop=16)
    model = np.full((16, 16), 5.0, np.float32)
    model[0, 0] = 2.0
    back = native_map(model, geometry, width=64, height=64)
    assert back[0, 0] == 2.0 and back[-1, -1] == 2.0  # outside the crop
    assert back[32, 32] == 5.0  # the centre, seen by the model


def write_png(path, array, exif_orientation=None):
    image = Image.fromarray(array)
    if exif_orientation:
        exif = Image.Exif()
        exif[0x0112] = exif_orientation
        image.save(path, exif=exif)
    else:
        image.save(path)
    return str(path)


def test_a_thin_scratch_is_lost_on_the_grid_and_found_at_native_resolution(tmp_path):
    """A one-pixel scratch on a 1200 x 160 line-scan image: resized into 32 x 64 it loses every pixel (the
    mask is emptied); at native resolution it is there, and a map that peaks on it scores it."""
    width, height, row = 1200, 160, 81
    geometry = Geometry(mode="resize", size=(32, 64))
    labels, mask_paths, sizes, patch_scores = [], [], [], []
    rng = np.random.default_rng(0)
    for i in range(6):
        defect = i >= 3
        mask = np.zeros((height, width), np.uint8)
        if defect:
            mask[row, 100:1100] = 255  # one pixel high
        labels.append("scratch" if defect else "good")
        mask_paths.append(write_png(tmp_path / f"{i}_mask.png", mask) if defect else "")
        sizes.append((width, height))
        grid = rng.normal(0, 0.1, size=(8, 16)).astype(np.float32)
        if defect:
            grid[int(row / height * 8), 2:14] += 3.0  # the map peaks on the scratch's cells
        patch_scores.append(grid)
    patch_scores = np.stack(patch_scores)
    image_scores = patch_scores.reshape(6, -1).max(axis=1)
    common = {"labels": labels, "mask_paths": mask_paths, "sizes": np.array(sizes), "patch_scores": patch_scores}
    model, emptied = evaluate_category(
        **common, image_scores=image_scores, spec=EvaluationSpec(geometry=geometry, sigma=1, extra=True)
    )
    assert emptied == 3 and np.isnan(model["pixel_auroc"])  # the scratch vanished from every resized mask
    native, emptied = evaluate_category(
        **common,
        image_scores=image_scores,
        spec=EvaluationSpec(geometry=geometry, sigma=1, extra=True, resolution="native"),
    )
    assert emptied == 0
    assert native["pixel_auroc"] > 0.95 and native["extra_pixel_aupro_fpr30"] > 0.5
    assert native["image_auroc"] == model["image_auroc"]


def test_native_metrics_equal_direct_computation_on_the_masks_own_pixels(tmp_path):
    """Crop geometry, a defect that reaches the image border outside the crop: the direct computation over
    every native pixel (maps built by hand through native_map, scikit-learn on the concatenation)."""
    geometry = Geometry(mode="crop", resize=32, crop=24)
    rng = np.random.default_rng(3)
    labels, paths, sizes, grids, truths = [], [], [], [], []
    for i, (width, height) in enumerate([(48, 40), (40, 40), (60, 44), (44, 52)]):
        mask = np.zeros((height, width), np.uint8)
        if i % 2:
            mask[height // 3 : height // 2, : width // 2] = 255  # reaches the left border, cut by the crop
        labels.append("hole" if i % 2 else "good")
        paths.append(write_png(tmp_path / f"m{i}.png", mask) if i % 2 else "")
        sizes.append((width, height))
        grids.append(rng.random((6, 6)).astype(np.float32))
        truths.append(mask > 0)
    grids = np.stack(grids)
    spec = EvaluationSpec(geometry=geometry, sigma=2, extra=True, resolution="native")
    got, _ = evaluate_category(
        labels=labels,
        mask_paths=paths,
        sizes=np.array(sizes),
        image_scores=grids.reshape(4, -1).max(1),
        patch_scores=grids,
        spec=spec,
    )
    from tailedcore.evaluation.metrics import anomaly_maps

    maps = anomaly_maps(grids, geometry.shape, 2)
    natives = [native_map(m, geometry, w, h) for m, (w, h) in zip(maps, sizes)]
    labels_all = np.concatenate([t.ravel() for t in truths])
    scores_all = np.concatenate([n.ravel() for n in natives]).astype(np.float64)
    assert got["pixel_auroc"] == pytest.approx(roc_auc_score(labels_all, scores_all), abs=1e-9)
    assert got["extra_pixel_ap"] == pytest.approx(average_precision_score(labels_all, scores_all), abs=1e-9)


def test_native_resolution_follows_the_masks_exif_orientation(tmp_path):
    """A mask stored landscape with an EXIF 'rotate 90' tag is scored in its displayed (portrait) orientation,
    as its image is."""
    stored = np.zeros((20, 50), np.uint8)
    stored[:, :5] = 255
    path = write_png(tmp_path / "m.png", stored, exif_orientation=6)
    mask = read_mask(path)
    assert mask.shape == (50, 20)
    geometry = Geometry(mode="resize", size=(16, 16))
    assert native_map(np.zeros((16, 16), np.float32), geometry, width=mask.shape[1], height=mask.shape[0]).shape == (
        50,
        20,
    )
