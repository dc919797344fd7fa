import pytest

from tailedcore.data.synthetic import SyntheticSpec, write_dataset


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory):
    """A small synthetic MVTec-layout dataset (3 categories, 48 px) shared by the tests."""
    root = tmp_path_factory.mktemp("synthetic")
    spec = SyntheticSpec(
        seed=3,
        image_size=48,
        n_train=6,
        n_test_good=2,
        n_test_defect_per_type=1,
        categories=("fabric", "washer", "chip"),
    )
    write_dataset(root, spec)
    return root, spec


def pytest_collection_modifyitems(config, items):
    """The slow tests first (a stable sort: their order among themselves stays the files' order): pytest-xdist
    hands tests out in this order, so the few minute-long Snakemake runs start at once on every worker instead of
    one of them starting last while the other workers sit idle."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
