import itertools

import numpy as np
import pytest
import torch

from tailedcore.samplers.greedy import greedy_coreset, greedy_kcenter, random_projection


def brute_force_greedy(points, num_select, start):
    """Textbook greedy k-center in float64 with an explicit distance matrix."""
    dist = np.sqrt(((points[:, None, :] - points[None, :, :]) ** 2).sum(-1))
    selected = [start]
    for _ in range(num_select - 1):
        nxt = int(np.argmax(dist[:, selected].min(axis=1)))
        selected.append(nxt)
    return np.array(selected)


@pytest.mark.parametrize(
    "seed,num_points,dim,num_select", [(0, 50, 3, 10), (1, 200, 16, 40), (2, 300, 128, 30), (3, 18, 128, 6)]
)  # 18 points: fewer than the bound's 32 directions
def test_greedy_equals_brute_force(seed, num_points, dim, num_select):
    rng = np.random.default_rng(seed)
    points = (rng.normal(size=(num_points, dim)) + 4 * rng.integers(0, 3, size=(num_points, 1))).astype(np.float32)
    start = int(rng.integers(num_points))
    np.testing.assert_array_equal(
        greedy_kcenter(points, num_select, start), brute_force_greedy(points.astype(np.float64), num_select, start)
    )


def test_greedy_is_a_two_approximation_of_the_optimal_k_center():
    rng = np.random.default_rng(4)
    points = rng.normal(size=(12, 2))
    chosen = greedy_kcenter(points.astype(np.float32), 3, 0)
    radius = lambda centres: np.sqrt(((points[:, None] - points[list(centres)][None]) ** 2).sum(-1)).min(1).max()  # noqa: E731
    optimum = min(radius(c) for c in itertools.combinations(range(12), 3))
    assert radius(chosen) <= 2 * optimum + 1e-9


def test_coreset_size_and_explicit_generator():
    features = np.random.default_rng(0).normal(size=(1000, 64)).astype(np.float32)
    a = greedy_coreset(features, 0.1, 16, torch.Generator().manual_seed(7))
    b = greedy_coreset(features, 0.1, 16, torch.Generator().manual_seed(7))
    c = greedy_coreset(features, 0.1, 16, torch.Generator().manual_seed(8))
    assert len(a) == 100 and len(set(a.tolist())) == 100
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_projection_is_uniform_in_linear_default_range():
    features = np.eye(256, dtype=np.float32)
    weight_t = random_projection(features, 128, torch.Generator().manual_seed(0))  # rows = columns of W
    assert weight_t.shape == (256, 128)
    assert np.abs(weight_t).max() <= 1 / 16 and np.abs(weight_t).max() > 0.9 / 16


@pytest.mark.parametrize("seed,num_points,dim,clusters", [(0, 3000, 128, 40), (1, 2000, 24, 5), (2, 1500, 7, 300)])
def test_pruned_greedy_selects_exactly_what_the_full_update_selects(seed, num_points, dim, clusters):
    """The triangle-inequality skips must never change a selection: same indices, in the same order, as
    the full distance update with the same arithmetic, on clustered data (where most updates are skipped)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dim)) * 5
    points = (centres[rng.integers(clusters, size=num_points)] + rng.normal(size=(num_points, dim))).astype(np.float32)
    pruned, work = greedy_kcenter(points, num_points // 5, 3, return_work=True)
    full, full_work = greedy_kcenter(points, num_points // 5, 3, prune=False, return_work=True)
    np.testing.assert_array_equal(pruned, full)
    assert full_work == 1.0 and work < 0.7  # the skips are real


@pytest.mark.parametrize("case", ["grid-ties", "duplicates", "one-far-cluster", "low-rank", "select-all"])
def test_clustered_greedy_equals_the_full_update_and_the_previous_kernel(case):
    """The cluster skips, the lower bound and the tournament tree never change a selection: on inputs with
    many exact ties (integer grid), duplicated points, a far outlier cluster, low-rank data (the bound is
    nearly exact) and a selection of every point, the indices equal the full update of the same kernel and
    the previous point-wise pruned kernel (bench/reference.py)."""
    from bench.reference import greedy_pointwise

    rng = np.random.default_rng(11)
    if case == "grid-ties":
        points = rng.integers(0, 4, size=(800, 3)).astype(np.float32)
    elif case == "duplicates":
        base = rng.normal(size=(150, 20)).astype(np.float32)
        points = np.concatenate([base, base[::-1], base[:40]])
    elif case == "one-far-cluster":
        points = np.concatenate([rng.normal(size=(900, 32)), 50 + rng.normal(size=(30, 32))]).astype(np.float32)
    elif case == "low-rank":
        points = (rng.normal(size=(1200, 4)) @ rng.normal(size=(4, 64))).astype(np.float32)
    else:
        points = rng.normal(size=(120, 8)).astype(np.float32)
    num_select = len(points) if case == "select-all" else len(points) // 4
    ours, work = greedy_kcenter(points, num_select, 5, return_work=True)
    full = greedy_kcenter(points, num_select, 5, prune=False)
    previous, _ = greedy_pointwise(points, num_select, 5)
    np.testing.assert_array_equal(ours, full)
    np.testing.assert_array_equal(ours, previous)
    if case == "select-all":
        assert sorted(ours.tolist()) == list(range(len(points)))
    elif case == "low-rank":
        assert work < 0.5  # the skips are real


@pytest.mark.parametrize("threads", [1, 2])
def test_deferred_greedy_equals_the_clustered_kernel_and_the_full_update_on_either_thread_count(threads):
    """The default CPU kernel brings a cluster up to date only when it could hold the next centre, and splits a
    large refresh over the threads: on 6,000 points of a few wide classes (refreshes with thousands of pending
    centres and hundreds of members, so both the serial and the threaded paths run), its 1,800 indices equal
    the clustered kernel's and the full update's, and it computes a small share of the exact distances."""
    import numba

    from tailedcore.samplers.deferred import greedy_deferred
    from tailedcore.samplers.kcenter import greedy_clusters

    rng = np.random.default_rng(5)
    centres = rng.normal(size=(6, 48)) * 3
    points = (centres[rng.integers(6, size=6000)] + rng.normal(size=(6000, 48))).astype(np.float32)
    before = numba.get_num_threads()
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    try:
        ours, computed, counts = greedy_deferred(points, 1800, 9, details=True)
    finally:
        numba.set_num_threads(before)
    clustered, _ = greedy_clusters(points, 1800, 9)
    full, _ = greedy_clusters(points, 1800, 9, prune=False)
    np.testing.assert_array_equal(ours, clustered)
    np.testing.assert_array_equal(ours, full)
    assert computed < 0.2 * 6000 * 1800 and counts["refreshes"] >= 1800
    assert counts["centre_tests"] > 1024 * 10  # refreshes with many pending centres happened
    assert (counts["threaded"] > 0) == (numba.config.NUMBA_NUM_THREADS >= threads > 1)


def test_greedy_logs_its_progress_with_the_time_left(caplog, monkeypatch):
    import logging

    from tailedcore.runtime.logs import ProgressLog

    monkeypatch.setattr(ProgressLog, "EVERY", 0.0)  # a line at every update instead of every 10 s
    points = np.random.default_rng(0).normal(size=(3000, 16)).astype(np.float32)
    with caplog.at_level(logging.INFO, logger="tailedcore"):
        greedy_kcenter(points, 600, 0, progress="test coreset")
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("test coreset:")]
    assert lines and all(" / 600 (" in line and "s left" in line for line in lines), lines


def test_greedy_ties_go_to_the_first_index_and_duplicates_are_handled():
    points = np.array([[0, 0], [1, 0], [-1, 0], [0, 0], [1, 0]], dtype=np.float32)
    # from 0: points 1 and 2 are equally far (first index wins), then 2; then only zero distances remain
    np.testing.assert_array_equal(greedy_kcenter(points, 4, 0), [0, 1, 2, 0])
    np.testing.assert_array_equal(greedy_kcenter(points, 4, 0, prune=False), [0, 1, 2, 0])


def test_greedy_rejects_bad_arguments():
    points = np.zeros((5, 2), dtype=np.float32)
    with pytest.raises(ValueError, match="cannot select 6 of 5"):
        greedy_kcenter(points, 6, 0)
    with pytest.raises(ValueError, match="start index 9"):
        greedy_kcenter(points, 2, 9)


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is visible")
def test_asking_for_cuda_without_a_gpu_is_a_clear_error():
    with pytest.raises(RuntimeError, match="no CUDA device"):
        greedy_kcenter(np.zeros((5, 2), dtype=np.float32), 2, 0, device="cuda")


def test_the_cuda_path_logic_equals_brute_force_when_run_on_cpu():
    """The device loop (no host syncs, next centre kept as a tensor) selects the textbook greedy; run on
    the CPU here, on CUDA by bench/gpu_check.sh."""
    from tailedcore.samplers.greedy import _greedy_torch

    rng = np.random.default_rng(9)
    points = (rng.normal(size=(300, 16)) + 4 * rng.integers(0, 3, size=(300, 1))).astype(np.float32)
    np.testing.assert_array_equal(
        _greedy_torch(points, 40, 5, torch.device("cpu")), brute_force_greedy(points.astype(np.float64), 40, 5)
    )
