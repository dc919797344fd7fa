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
