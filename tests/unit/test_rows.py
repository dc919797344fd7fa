"""Patch features read on demand (tailedcore.features.rows): the same numbers as arrays in memory, for the
readers and for every method's fit, with the files never left mapped."""

import numpy as np
import pytest
import torch

from tailedcore.features.cache import FeatureStore, cache_paths, write_ids
from tailedcore.features.rows import CachedArray, PatchRows, read_positions
from tailedcore.methods.base import FeatureSet, build_method
from tailedcore.samplers.greedy import random_projection, take_rows


def write_cache(folder, sizes, grid=(3, 4), dim=12, dtype=np.float16, seed=0):
    """A feature cache of one file per category; returns {category: (ids, patches)}."""
    rng = np.random.default_rng(seed)
    written = {}
    for number, size in enumerate(sizes):
        category = f"c{number}"
        paths = cache_paths(folder, category)
        paths["patches"].parent.mkdir(parents=True, exist_ok=True)
        patches = rng.normal(size=(size, *grid, dim)).astype(dtype)
        ids = [f"{category} image {i}.png" for i in range(size)]
        np.save(paths["patches"], patches)
        np.save(paths["global"], rng.normal(size=(size, 5)).astype(np.float32))
        write_ids(paths["ids"], ids)
        written[category] = (ids, patches)
    return written


@pytest.fixture
def store_and_pool(tmp_path):
    written = write_cache(tmp_path, [7, 5, 9])
    store = FeatureStore(tmp_path, list(written))
    rng = np.random.default_rng(1)  # a training pool drawn across categories, in a shuffled order
    picks = [(c, i) for c, (ids, _) in written.items() for i in range(len(ids)) if rng.random() < 0.7]
    picks = [picks[i] for i in rng.permutation(len(picks))]
    ids = [written[c][0][i] for c, i in picks]
    categories = [c for c, _ in picks]
    expected = np.stack([written[c][1][i] for c, i in picks])
    return store, ids, categories, expected


def test_lazy_patches_read_what_the_arrays_hold(store_and_pool):
    store, ids, categories, expected = store_and_pool
    lazy = store.patch_rows(ids, categories)
    assert lazy.shape == expected.shape and lazy.dtype == expected.dtype
    np.testing.assert_array_equal(lazy.read(), expected)
    np.testing.assert_array_equal(np.asarray(lazy), expected)
    np.testing.assert_array_equal(store.patch_features(ids, categories), expected)
    flat, reference = lazy.reshape(-1, expected.shape[-1]), expected.reshape(-1, expected.shape[-1])
    assert flat.shape == reference.shape and len(flat) == len(reference)
    rows = np.random.default_rng(2).choice(len(reference), 40)  # unsorted, with repeats
    np.testing.assert_array_equal(flat[rows], reference[rows])
    np.testing.assert_array_equal(flat[5:17], reference[5:17])
    mask = np.random.default_rng(3).random(len(reference)) < 0.3  # a boolean mask selects rows, not rows 0 and 1
    np.testing.assert_array_equal(flat[mask], reference[mask])
    subset = [4, 0, 2]
    np.testing.assert_array_equal(lazy[subset].read(), expected[subset])
    np.testing.assert_array_equal(read_positions(lazy, 3, 9), expected.reshape(len(expected), 12, -1)[:, 3:9])
    np.testing.assert_array_equal(read_positions(expected, 3, 9), expected.reshape(len(expected), 12, -1)[:, 3:9])


def test_samplers_read_lazy_rows_as_arrays(store_and_pool):
    store, ids, categories, expected = store_and_pool
    flat = store.patch_rows(ids, categories).reshape(-1, expected.shape[-1])
    reference = expected.reshape(-1, expected.shape[-1])
    rows = np.array([30, 2, 2, 71, 5])
    np.testing.assert_array_equal(
        take_rows([flat, reference], rows + len(reference)), reference[rows].astype(np.float32)
    )
    lazy = random_projection(flat, 4, torch.Generator().manual_seed(0))
    direct = random_projection(reference, 4, torch.Generator().manual_seed(0))
    np.testing.assert_array_equal(lazy, direct)


def test_reads_in_blocks_leave_no_map_open(tmp_path, monkeypatch):
    import tailedcore.features.rows as rows_module

    monkeypatch.setattr(rows_module, "BLOCK_ROWS", 5)  # many blocks, each through its own map
    written = write_cache(tmp_path, [6])
    array = CachedArray(cache_paths(tmp_path, "c0")["patches"])
    rows = np.arange(6 * 12)[::-1]
    np.testing.assert_array_equal(array.take(rows, width=12), written["c0"][1].reshape(-1, 12)[rows])
    maps = open("/proc/self/maps").read()
    assert str(cache_paths(tmp_path, "c0")["patches"]) not in maps


def test_raw_files_check_their_size(tmp_path):
    data = np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5)
    (tmp_path / "views.raw").write_bytes(data.tobytes())
    views = PatchRows.of(CachedArray.raw(tmp_path / "views.raw", data.shape, np.float32))
    np.testing.assert_array_equal(views.read(), data)
    with pytest.raises(ValueError, match="holds 480 bytes"):
        CachedArray.raw(tmp_path / "views.raw", (3, 3, 4, 5), np.float32)


@pytest.mark.parametrize("method", ["patchcore", "softpatch", "tailedcore", "tailedcore_filtered", "padim"])
def test_fits_on_lazy_patches_equal_fits_on_arrays(store_and_pool, method, tmp_path):
    store, ids, categories, expected = store_and_pool
    embeddings = store.global_features(ids, categories)
    test = FeatureSet(ids[:4], expected[:4].astype(np.float32), embeddings[:4])
    views = np.repeat(expected, 3, axis=0)
    (tmp_path / "v.raw").write_bytes(views.tobytes())

    def in_memory(rows, kind):
        return np.repeat(expected[rows], 3, axis=0)

    def on_disk(rows, kind):
        return PatchRows.of(CachedArray.raw(tmp_path / "v.raw", views.shape, views.dtype))[
            np.repeat(np.asarray(rows) * 3, 3) + np.tile(np.arange(3), len(rows))
        ]

    results = []
    for patches, augment in ((expected, in_memory), (store.patch_rows(ids, categories), on_disk)):
        options = {"tail_augmentation": "rotflip", "coreset_ratio": 0.3} if method.startswith("tailedcore") else {}
        if method != "padim":  # one backend for both fits: `auto` may take another one measured by a parallel
            options["knn_backend"] = "torch"  # worker, whose float32 distances differ in the last bits
        if method == "tailedcore_filtered":  # the tail branch through the filter: its rows read by index
            options.update(tail_filter=True, tail_mass_cap=0.5, tail_cut="cap")
        model = build_method(method.split("_")[0], options, torch.Generator().manual_seed(5))
        report = model.fit(FeatureSet(ids, patches, embeddings, augment))
        report.pop("fit_seconds")
        results.append((report, model.score(test)))
    assert results[0][0] == results[1][0]
    np.testing.assert_array_equal(results[0][1].patch_scores, results[1][1].patch_scores)
