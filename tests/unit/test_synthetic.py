import numpy as np
import pytest
from PIL import Image

from tailedcore.data.synthetic import CATEGORIES, DEFECTS, SyntheticSpec, render


def test_at_least_eight_categories_with_two_defect_types_each():
    assert len(CATEGORIES) >= 8
    assert all(len(DEFECTS[c]) >= 2 for c in CATEGORIES)


def test_rendering_is_deterministic_and_seeded():
    spec = SyntheticSpec(seed=5, image_size=64)
    for category in CATEGORIES:
        a, _ = render(category, spec, "train", 3)
        b, _ = render(category, spec, "train", 3)
        c, _ = render(category, SyntheticSpec(seed=6, image_size=64), "train", 3)
        assert np.array_equal(a, b)
        assert not np.array_equal(a, c)


@pytest.mark.parametrize("category", CATEGORIES)
def test_masks_are_exactly_the_changed_pixels(category):
    spec = SyntheticSpec(seed=1, image_size=96)
    for defect in DEFECTS[category]:
        for index in range(3):
            normal, no_mask = render(category, spec, "test_defect", index)
            defective, mask = render(category, spec, "test_defect", index, defect)
            assert no_mask is None and mask.dtype == bool and mask.any()
            changed = np.any(normal != defective, axis=2)
            assert not changed[~mask].any(), f"{category}/{defect}: pixels outside the mask changed"
            assert changed[mask].mean() > 0.8, f"{category}/{defect}: most mask pixels must differ"


def test_written_dataset_has_the_mvtec_layout(tiny_dataset):
    root, spec = tiny_dataset
    for category in spec.categories:
        assert len(list((root / category / "train" / "good").glob("*.png"))) == spec.n_train
        assert len(list((root / category / "test" / "good").glob("*.png"))) == spec.n_test_good
        for defect in DEFECTS[category]:
            images = sorted((root / category / "test" / defect).glob("*.png"))
            assert len(images) == spec.n_test_defect_per_type
            for image in images:
                mask = np.asarray(Image.open(root / category / "ground_truth" / defect / f"{image.stem}_mask.png"))
                assert mask.shape == (spec.image_size, spec.image_size)
                assert set(np.unique(mask)) == {0, 255}


def test_unknown_category_is_rejected():
    with pytest.raises(ValueError, match="unknown synthetic categories"):
        SyntheticSpec(categories=("fabric", "teapot"))
