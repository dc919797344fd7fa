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


# The two longest tests (5.5 min each on 2 cores, measured with --durations): they start first, on different workers.
LONGEST = ("test_readme_slurm_command_runs_every_job_through_slurm", "test_snakemake_end_to_end")


def pytest_collection_modifyitems(config, items):
    """The longest tests first, then the other slow ones, then the rest (a stable sort: within each group the
    files' order). pytest-xdist hands tests out in this order, one at a time (``--maxschedchunk 1`` in
    pyproject.toml), so the minute-long Snakemake runs start at once on every worker and short tests fill the
    end, instead of one worker running every slow test while the other sits idle."""

    def group(item) -> int:
        if item.originalname in LONGEST:
            return 0
        return 1 if item.get_closest_marker("slow") else 2

    items.sort(key=group)
    longest = [i for i, item in enumerate(items) if item.originalname in LONGEST]
    if len(longest) == 2 and len(items) > 2:  # xdist's first hand-out is two tests per worker: 1st and 3rd apart
        items.insert(2, items.pop(longest[1]))
