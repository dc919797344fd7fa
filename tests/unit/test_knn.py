import numpy as np
import pytest

from tailedcore.features.knn import knn_search


@pytest.mark.parametrize("k", [1, 3])
def test_faiss_and_torch_agree(k):
    rng = np.random.default_rng(0)
    memory = rng.normal(size=(500, 32)).astype(np.float32)
    queries = rng.normal(size=(300, 32)).astype(np.float32)
    d_faiss, i_faiss = knn_search(queries, memory, k, backend="faiss")
    d_torch, i_torch = knn_search(queries, memory, k, backend="torch", chunk=77)
    exact = ((queries[:, None] - memory[None]) ** 2).sum(-1)
    np.testing.assert_allclose(d_faiss, np.sort(exact, axis=1)[:, :k], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(d_torch, d_faiss, rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(i_torch, i_faiss)


def test_unknown_backend():
    with pytest.raises(ValueError, match="unknown knn backend"):
        knn_search(np.zeros((1, 2)), np.zeros((1, 2)), backend="annoy")


def test_auto_measures_once_per_size_class_and_keeps_the_neighbours(tmp_path, monkeypatch):
    import json

    import torch

    from tailedcore.features import knn

    monkeypatch.setenv("TAILEDCORE_CACHE", str(tmp_path))
    rng = np.random.default_rng(0)
    memory = rng.normal(size=(3000, 32)).astype(np.float32)
    queries = rng.normal(size=(500, 32)).astype(np.float32)
    dist_auto, idx_auto = knn_search(queries, memory, 1, "auto")
    dist_torch, idx_torch = knn_search(queries, memory, 1, "torch")
    np.testing.assert_allclose(dist_auto, dist_torch, rtol=1e-4, atol=1e-4)
    assert (idx_auto == idx_torch).mean() > 0.99  # the rest: equal-distance ties
    cache = json.loads((tmp_path / "knn_backends.json").read_text())
    key = knn.size_class(len(memory), 32, 1, torch.device("cpu"), torch.get_num_threads())
    assert cache[knn._machine()][key] in ("faiss", "torch", "bound")
    # a cached choice is used as is, without measuring again
    cache[knn._machine()][key] = "faiss"
    (tmp_path / "knn_backends.json").write_text(json.dumps(cache))
    monkeypatch.setattr(knn, "CALIBRATION_QUERIES", None)  # would fail if it measured
    assert knn.choose_backend(memory, 1, torch.device("cpu")) == "faiss"


def test_auto_times_every_backend_on_the_full_calibration_count_even_for_a_short_query_set(tmp_path, monkeypatch):
    """The choice is cached for the whole size class, so a first search with a handful of queries must not
    decide it on a handful: every timed search runs CALIBRATION_QUERIES queries drawn from the real ones."""
    import torch

    from tailedcore.features import knn, knn_bound

    monkeypatch.setenv("TAILEDCORE_CACHE", str(tmp_path))
    rng = np.random.default_rng(1)
    memory = rng.normal(size=(4000, 16)).astype(np.float32)
    queries = rng.normal(size=(64, 16)).astype(np.float32)
    seen = []
    flat, bound = knn.knn_search, knn_bound.BoundIndex.search
    monkeypatch.setattr(knn, "knn_search", lambda q, *a, **kw: seen.append(("flat", len(q))) or flat(q, *a, **kw))
    monkeypatch.setattr(
        knn_bound.BoundIndex,
        "search",
        lambda self, q, *a, **kw: seen.append(("bound", len(q))) or bound(self, q, *a, **kw),
    )
    knn.choose_backend(memory, 1, torch.device("cpu"), queries=queries)
    timed = [count for _, count in seen if count > 16]  # the 16-query call only compiles the bound kernel
    assert len(timed) >= 6 and set(timed) == {knn.CALIBRATION_QUERIES}, seen


def test_cached_measurements_are_keyed_by_the_cpu_model(monkeypatch):
    """A host that keeps its name but gets another CPU (a moved virtual machine, cluster nodes sharing a home
    folder) measures again instead of taking another CPU's choice."""
    import builtins
    import io

    from tailedcore.features import knn
    from tailedcore.plan import estimate

    real_open = builtins.open
    model = {"name": "Vendor CPU A"}

    def fake_open(path, *args, **kwargs):
        if str(path) == "/proc/cpuinfo":
            return io.StringIO(f"processor\t: 0\nmodel name\t: {model['name']}\nflags\t\t: fpu\n")
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", fake_open)
    first = (knn._machine(), estimate._machine_key("cpu", 2, "lite0", (224, 224)))
    model["name"] = "Vendor CPU B"
    second = (knn._machine(), estimate._machine_key("cpu", 2, "lite0", (224, 224)))
    assert "Vendor CPU A" in first[0] and "Vendor CPU B" in second[0]
    assert first[0] != second[0] and first[1] != second[1]


def test_faiss_search_in_progress_blocks_equals_one_call():
    """The blocks that let a long search log its progress change no number: faiss's own 4096-query blocks
    stay whole and no block falls under its 20-query BLAS threshold (a 5-query tail joins the last block)."""
    import faiss

    from tailedcore.features.knn import _faiss_blocks, knn_search

    assert _faiss_blocks(2 * 65536 + 5) == [(0, 65536), (65536, 2 * 65536 + 5)]
    rng = np.random.default_rng(3)
    queries = rng.normal(size=(65536 + 5, 16)).astype(np.float32)
    memory = rng.normal(size=(500, 16)).astype(np.float32)
    index = faiss.IndexFlatL2(16)
    index.add(memory)
    distances, indices = index.search(queries, 2)
    ours_d, ours_i = knn_search(queries, memory, k=2, backend="faiss", device="cpu")
    np.testing.assert_array_equal(ours_i, indices)
    np.testing.assert_array_equal(ours_d, np.maximum(distances, 0.0))


def _exact_order(queries, memory, k):
    """The k nearest rows by float64 distance, first index on equal distances, and those distances."""
    exact = ((queries[:, None].astype(np.float64) - memory[None].astype(np.float64)) ** 2).sum(-1)
    order = np.lexsort((np.broadcast_to(np.arange(len(memory)), exact.shape), exact), axis=1)[:, :k]
    return np.take_along_axis(exact, order, 1), order


@pytest.mark.parametrize("k", [1, 3])
def test_bound_search_is_the_exact_nearest_row_first_index_on_ties(k):
    """The bound backend returns, for every query, the rows of smallest float64 distance (first index on
    equal distances: duplicated bank rows, queries equal to bank rows) and their distance to float32 rounding,
    in any block size."""
    rng = np.random.default_rng(0)
    # low-rank plus noise, like patch features: the bound prunes, so the margins are exercised
    memory = (rng.normal(size=(4000, 8)) @ rng.normal(size=(8, 96)) + 0.3 * rng.normal(size=(4000, 96))).astype(
        np.float32
    )
    memory[100], memory[7] = memory[2000], memory[5]
    queries = (rng.normal(size=(600, 8)) @ rng.normal(size=(8, 96)) + 0.3 * rng.normal(size=(600, 96))).astype(
        np.float32
    )
    queries[:4] = memory[[2000, 5, 7, 3]]
    want_d, want_i = _exact_order(queries, memory, k)
    for chunk in (1, 64, 600):
        distances, indices = knn_search(queries, memory, k, backend="bound", chunk=chunk)
        np.testing.assert_array_equal(indices, want_i)
        np.testing.assert_allclose(distances, want_d, rtol=2**-23, atol=0)
    assert list(indices[:4, 0]) == [100, 5, 5, 3]  # duplicates: the first of equal rows


def test_bound_search_skips_most_of_the_bank_and_agrees_with_the_flat_search():
    from tailedcore.features.knn_bound import BoundIndex

    rng = np.random.default_rng(1)
    basis = rng.normal(size=(6, 64))
    memory = (rng.normal(size=(6000, 6)) @ basis + 0.05 * rng.normal(size=(6000, 64))).astype(np.float32)
    queries = (rng.normal(size=(1000, 6)) @ basis + 0.05 * rng.normal(size=(1000, 64))).astype(np.float32)
    index = BoundIndex(memory, k=8)
    distances, indices, computed = index.search(queries, 1, 256)
    assert computed < 0.05 * len(queries) * len(memory)  # the bound excluded > 95 % of the pairs
    flat_d, flat_i = knn_search(queries, memory, 1, backend="torch")
    np.testing.assert_array_equal(indices, flat_i)
    np.testing.assert_allclose(distances, flat_d, rtol=1e-4)


def test_bound_margins_keep_a_row_at_the_exact_upper_bound():
    """A bank whose rows all lie at the same distance from the query (a sphere): the bound cannot exclude any,
    rounding must not drop the first one."""
    rng = np.random.default_rng(2)
    directions = rng.normal(size=(500, 32))
    memory = (directions / np.linalg.norm(directions, axis=1, keepdims=True) * 3.0).astype(np.float32)
    queries = np.zeros((3, 32), np.float32)
    want_d, want_i = _exact_order(queries, memory, 1)
    distances, indices = knn_search(queries, memory, 1, backend="bound")
    np.testing.assert_array_equal(indices, want_i)
    np.testing.assert_allclose(distances, want_d, rtol=2**-23)


def test_bound_search_torch_refinement_the_cuda_path_is_exact_too():
    """The refinement CUDA uses (torch operations over every surviving pair), run on the CPU."""
    from tailedcore.features.knn_bound import BoundIndex

    rng = np.random.default_rng(4)
    memory = (rng.normal(size=(3000, 6)) @ rng.normal(size=(6, 48)) + 0.2 * rng.normal(size=(3000, 48))).astype(
        np.float32
    )
    memory[11] = memory[2500]
    queries = (rng.normal(size=(400, 6)) @ rng.normal(size=(6, 48))).astype(np.float32)
    queries[0] = memory[2500]
    want_d, want_i = _exact_order(queries, memory, 1)
    out = (np.empty((400, 1), np.float32), np.empty((400, 1), np.int64))
    distances, indices, _ = BoundIndex(memory, k=8)._search_cuda(queries, 1, 128, None, out)
    np.testing.assert_array_equal(indices, want_i)
    assert indices[0, 0] == 11
    np.testing.assert_allclose(distances, want_d, rtol=2**-23)


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_bound_never_exceeds_the_distance_with_the_norm_of_the_rest_and_its_margins(precision):
    """The bound the pass and the cascade start from (float32: |b^|^2 - 2 q^ . b^ plus |q^|^2, less e1;
    bfloat16: |q^|^2 + |b^|^2 - 2 q^ . b^ from the rounded product, less c |q^| |b^|), less e2 after the root, is
    a lower bound of every distance: for queries near, far from and on the bank, rows of very different norms,
    and the rounding of all of it, with the cascade cut short of the full dimension (the rest's norm from the
    subtraction)."""
    from tailedcore.features.knn_bound import BoundIndex

    rng = np.random.default_rng(5)
    scales = np.exp(rng.uniform(-3, 3, size=(4000, 1)))  # rest norms over two orders of magnitude
    memory = rng.normal(size=(4000, 4)) @ rng.normal(size=(4, 320)) + scales * rng.normal(size=(4000, 320))
    memory = memory.astype(np.float32)
    queries = np.concatenate([memory[:50], memory[50:100] * 30, rng.normal(size=(100, 320)) * 0.01]).astype(np.float32)
    index = BoundIndex(memory, k=8, precision=precision)
    assert index.depth < memory.shape[1]  # the rotation stops short: the rest's norms by subtraction
    lower = index.lower_bounds(queries)
    truth = np.sqrt(((queries.astype(np.float64)[:, None, :] - memory.astype(np.float64)[None]) ** 2).sum(-1))
    assert (lower <= truth).all()
    assert np.median(truth - lower) < 0.5 * np.median(truth)  # and tight: the norm of the rest is in it


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_bound_search_is_exact_under_either_product_precision(precision):
    """Both products give the exact neighbours (first index on ties) with the cascade cut short of the full
    dimension; the bfloat16 one, on any CPU (emulated where it has no bfloat16 units)."""
    from tailedcore.features.knn_bound import DEPTH, BoundIndex

    rng = np.random.default_rng(6)
    basis = rng.normal(size=(10, 384))
    memory = (rng.normal(size=(5000, 10)) @ basis + 0.3 * rng.normal(size=(5000, 384))).astype(np.float32)
    memory[4000] = memory[17]
    queries = (rng.normal(size=(700, 10)) @ basis + 0.3 * rng.normal(size=(700, 384))).astype(np.float32)
    queries[0] = memory[4000]
    index = BoundIndex(memory, k=16, precision=precision)
    assert index.depth == 16 + DEPTH < 384 and index.precision == precision
    distances, indices, computed = index.search(queries, 2, 256)
    want_d, want_i = _exact_order(queries, memory, 2)
    np.testing.assert_array_equal(indices, want_i)
    np.testing.assert_allclose(distances, want_d, rtol=2**-23)
    assert indices[0, 0] == 17 and computed < 0.2 * len(queries) * len(memory)


def test_bound_precision_is_measured_once_and_validated():
    """``auto`` takes bfloat16 only where this CPU's bfloat16 product is clearly faster (measured once per
    width, cached); an unknown precision is refused with the choices; CUDA keeps the float32 product."""
    from tailedcore.features import knn_bound

    choice = knn_bound._precision("auto", 96)
    assert choice in ("float32", "bfloat16") and knn_bound._PRECISION[96] == choice
    assert knn_bound._precision("float32", 96) == "float32"
    with pytest.raises(ValueError, match="float32, bfloat16 or auto"):
        knn_bound._precision("half", 96)
    index = knn_bound.BoundIndex(np.ones((10, 8), np.float32), precision="bfloat16")
    assert index.k == knn_bound.bound_dim(8, "bfloat16") == 8
    assert knn_bound.bound_dim(256, "bfloat16") + 1 == 96 and knn_bound.bound_dim(1024, "bfloat16") + 1 == 160
