import numpy as np
import pytest

from tailedcore.knn import knn_search


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

    from tailedcore import knn

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
    assert cache[knn._machine()][key] in ("faiss", "torch")
    # a cached choice is used as is, without measuring again
    cache[knn._machine()][key] = "faiss"
    (tmp_path / "knn_backends.json").write_text(json.dumps(cache))
    monkeypatch.setattr(knn, "CALIBRATION_QUERIES", None)  # would fail if it measured
    assert knn.choose_backend(memory, 1, torch.device("cpu")) == "faiss"


def test_faiss_search_in_progress_blocks_equals_one_call():
    """The blocks that let a long search log its progress change no number: faiss's own 4096-query blocks
    stay whole and no block falls under its 20-query BLAS threshold (a 5-query tail joins the last block)."""
    import faiss

    from tailedcore.knn import _faiss_blocks, knn_search

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
