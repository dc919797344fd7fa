"""Exact nearest neighbours that skip most of the bank: a lower bound from the bank's leading principal
components, exact distances only for the rows the bound cannot exclude.

Over 300 lines: the fit, the margins and the two refinements (numba, torch) are one exactness argument; split
up, a margin could change in one place and not the other.

Fit once per bank: its mean ``m`` and an orthonormal basis ``V`` (eigenvectors of its covariance, float64,
largest variance first). A rotation keeps every distance, |q - b| = |(q - m) V - (b - m) V|, so the squared
distance over the first ``k`` rotated coordinates, L(q, b) = |q'_k - b'_k|^2, never exceeds |q - b|^2; on
patch features a few dozen components hold most of the variance, so L is tight.

Search, per block of 256 queries and tile of 4,096 bank rows (the bank's rows in a fixed random order, so
the first tile is a sample of the whole bank):

1. L for every (query, row) pair of the tile as ONE matrix product in k dimensions (``|b'_k|^2 - 2 q'_k .
   b'_k``, then ``+ |q'_k|^2``): k / d of the flat search's arithmetic, its output kept in cache.
2. Before a query has k exact distances: the k rows of smallest L in the tile and their exact distances give
   the first upper bound U of the answer.
3. Every row whose L the margin cannot put above U goes through a cascade (its rotated distance over the
   remaining coordinates, 32 at a time, largest variance first, dropped as soon as it passes the cut) and,
   if it survives, gets its exact distance; U follows the k-th best exact distance found so far.

**Exactness.** An exact distance is a float64 sum over the original float32 coordinates, rounded once to
float32: within half a float32 ulp of the true distance (the flat search's error is up to about
d * 2^-24 (|q|^2 + |b|^2), its GEMM form). A row is skipped only when its bound, after a margin, exceeds U:
the computed L is off from the true partial distance by at most e1 = 8 (k + 8) 2^-24 (|q'_k|^2 + max |b'_k|^2)
(the float32 matrix product and norms, any summation order) and the rotated coordinates, rounded once from
float64, move each point by at most 2^-24 |x - m|, so by e2 = 2 * 2^-24 (|q - m| + max |b - m|) in distance.
A row is skipped only if sqrt(L - e1) - e2 > sqrt(U) (1 + 1e-9): its true distance exceeds U. So every row
at distance <= U is checked, and the answer is the exact nearest row (first index on equal distances), the
k nearest in (distance, index) order. Against the flat search it differs only where the flat search's own
rounding chose between rows whose distances lie within its error (tests and bench/ count them: none on
real features).

The cascade's partial sums are float64 sums over the float32 rotated coordinates, so e2 covers them too.
CPU: one worker thread per core, each taking whole query blocks: the products through single-threaded torch,
steps 2 and 3 in a numba kernel that releases the GIL. CUDA: the whole bank per query block, the same bound
with torch operations (k = 1; larger k falls back to the flat search).

"""

from __future__ import annotations

import math

import numpy as np
import torch
from numba import njit

UNIT = 2.0**-24  # float32 unit roundoff
PCA_SAMPLE = 65536  # bank rows the basis is fitted on (any orthonormal basis is exact; this one is tight)
TILE_QUERIES, TILE_ROWS = 256, 4096  # CPU: a (256, 4096) float32 product block is 4 MiB, it stays in cache


def bound_dim(dim: int) -> int:
    """Components of the bound: 64 up to 512-d features, 128 above (measured on ELPV's patch features against a
    10 % coreset, bench/run.py knn: at 256-d 24, 32, 48 and 64 took 1.2-1.5, 1.1-1.5, 1.0 and 0.8-0.9 s; at
    1024-d 64, 96 and 128 took 1.8-2.2, 1.6-1.9 and 1.7 s)."""
    return min(dim, 64 if dim <= 512 else 128)


class BoundIndex:
    """A memory bank prepared for :meth:`search`: its rotation and the first ``k`` rotated coordinates."""

    def __init__(self, memory: np.ndarray, k: int | None = None, device: torch.device | None = None):
        self.device = device if device is not None else torch.device("cpu")
        memory = np.asarray(memory, dtype=np.float32)
        num, dim = memory.shape
        # rows in a fixed random order: the first tile a query meets is a sample of the whole bank, so its first
        # upper bound is already tight (the bank's own order groups rows by image); ties go by the original index
        self.order = np.random.default_rng(0).permutation(num).astype(np.int64)
        self.memory = np.ascontiguousarray(memory)  # no copy when it is float32 already; read through ``order``
        self.k = min(dim, k or bound_dim(dim))
        rng = np.random.default_rng(0)
        sample = self.memory if num <= PCA_SAMPLE else self.memory[np.sort(rng.choice(num, PCA_SAMPLE, replace=False))]
        self.mean = sample.astype(np.float64).mean(axis=0)
        centred = torch.from_numpy((sample - self.mean.astype(np.float32)).astype(np.float32))
        covariance = (centred.T @ centred).double().numpy()  # only the basis' tightness depends on its rounding
        _, vectors = np.linalg.eigh(covariance)  # orthonormal to float64 rounding: the bound stays valid
        self.basis = np.ascontiguousarray(vectors[:, ::-1])
        rotated, norms = self.rotate(self.memory, self.order)  # in tile order
        self.bank_rot = rotated  # every rotated coordinate: the cascade of step 3
        self.bank_k = torch.from_numpy(np.ascontiguousarray(rotated[:, : self.k])).to(self.device)
        self.bank_sq = (self.bank_k * self.bank_k).sum(1)
        self.bank_sq_max = float(self.bank_sq.max()) if num else 0.0
        self.bank_norm_max = float(norms.max()) if num else 0.0
        # CUDA refines on the device, rows in tile order; the CPU reads ``memory[order[j]]`` (no second copy)
        self.bank = torch.from_numpy(self.memory[self.order]).to(self.device) if self.device.type == "cuda" else None

    def rotate(self, rows: np.ndarray, order: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(rotated coordinates, float32; |x - m|, float64) of ``rows`` (taken in ``order`` when given), in float64
        then rounded once."""
        out = np.empty((len(rows), rows.shape[1]), np.float32)
        norms = np.empty(len(rows), np.float64)
        basis = torch.from_numpy(self.basis)
        for start in range(0, len(rows), 65536):
            part = rows[start : start + 65536] if order is None else rows[order[start : start + 65536]]
            centred = torch.from_numpy(part.astype(np.float64) - self.mean)
            out[start : start + 65536] = torch.mm(centred, basis).numpy()
            norms[start : start + 65536] = torch.sqrt((centred * centred).sum(1)).numpy()
        return out, norms

    def margins(self, query_k_sq: np.ndarray, query_norms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(e1, e2) per query: the float-safe margins of the module docstring."""
        e1 = 8.0 * (self.k + 8) * UNIT * (query_k_sq.astype(np.float64) + self.bank_sq_max)
        e2 = 2.0 * UNIT * (query_norms + self.bank_norm_max)
        return e1, e2

    @torch.no_grad()
    def search(self, queries: np.ndarray, k: int, chunk: int, progress=None) -> tuple[np.ndarray, np.ndarray, int]:
        """(distances (Q, k) float32, indices (Q, k) int64, exact distances computed).

        CPU: one worker thread per core, each taking whole query blocks (rotation, the products tile by tile,
        the refinement) with single-threaded torch and a numba kernel that releases the GIL: torch's and
        numba's thread pools taking turns spin against each other (measured: 2-4x slower)."""
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        distances = np.empty((len(queries), k), np.float32)
        indices = np.empty((len(queries), k), np.int64)
        if self.device.type == "cuda":
            return self._search_cuda(queries, k, chunk, progress, (distances, indices))
        from concurrent.futures import ThreadPoolExecutor

        threads = torch.get_num_threads()
        blocks = list(range(0, len(queries), TILE_QUERIES))

        def work(start: int) -> int:
            block = queries[start : start + TILE_QUERIES]
            best_d = np.full((len(block), k), np.inf)
            best_i = np.full((len(block), k), len(self.memory), np.int64)  # original indices
            rotated, norms = self.rotate(block)
            q_k = torch.from_numpy(np.ascontiguousarray(rotated[:, : self.k]))
            q_sq = (q_k * q_k).sum(1)
            e1, e2 = self.margins(q_sq.numpy(), norms)
            buffer = torch.empty((len(block), min(TILE_ROWS, len(self.memory))), dtype=torch.float32)
            bank = (self.bank_sq.numpy(), self.bank_rot, self.memory, self.order)
            computed = 0
            for first in range(0, len(self.memory), TILE_ROWS):
                last = min(len(self.memory), first + TILE_ROWS)
                dots = torch.mm(q_k, self.bank_k[first:last].T, out=buffer[:, : last - first])
                queries_of_block = (dots.numpy(), q_sq.numpy(), rotated, block, e1, e2)
                computed += _refine(queries_of_block, bank, first, self.k, (best_d, best_i))
            distances[start : start + len(block)], indices[start : start + len(block)] = best_d, best_i
            return computed

        computed = 0
        previous = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            with ThreadPoolExecutor(max_workers=threads) as pool:
                for number, n in enumerate(pool.map(work, blocks)):
                    computed += n
                    if progress is not None and number % 64 == 0:
                        progress.update(blocks[number])
        finally:
            torch.set_num_threads(previous)
        return distances, indices, computed

    def _search_cuda(self, queries, k, chunk, progress, out):
        """The whole bank per query block, refined with torch operations (k = 1): the CUDA path; it runs on the
        CPU as well (the tests check it there)."""
        distances, indices = out
        if self.bank is None:  # the CPU running this path (the tests)
            self.bank = torch.from_numpy(self.memory[self.order]).to(self.device)
        computed = 0
        buffer = torch.empty((chunk, len(self.memory)), dtype=torch.float32, device=self.device)
        for start in range(0, len(queries), chunk):
            if progress is not None:
                progress.update(start)
            block = queries[start : start + chunk]
            rotated, norms = self.rotate(block)
            q_k = torch.from_numpy(np.ascontiguousarray(rotated[:, : self.k])).to(self.device)
            q_sq = (q_k * q_k).sum(1)
            e1, e2 = self.margins(q_sq.cpu().numpy(), norms)
            dots = torch.mm(q_k, self.bank_k.T, out=buffer[: len(block)])
            d, i, n = self._refine_torch(self.bank_sq[None, :] - 2.0 * dots, q_sq, block, e1, e2)
            distances[start : start + len(block)], indices[start : start + len(block)] = d, i
            computed += int(n)
        return distances, indices, computed

    def _refine_torch(self, partial, q_sq, block: np.ndarray, e1: np.ndarray, e2: np.ndarray):
        """Steps 2 and 3 with torch operations (k = 1): every surviving pair at once, then the first minimum."""
        device = partial.device
        q = torch.from_numpy(block).to(device)
        first = partial.argmin(dim=1)
        upper = ((q.double() - self.bank[first].double()) ** 2).sum(1)
        e1_t = torch.from_numpy(e1).to(device)
        e2_t = torch.from_numpy(e2).to(device)
        limit = (upper.sqrt() * (1 + 1e-9) + e2_t) ** 2 + e1_t - q_sq.double()
        rows, cols = torch.nonzero(partial.double() <= limit[:, None], as_tuple=True)
        exact = torch.empty(len(rows), dtype=torch.float64, device=device)
        for s in range(0, len(rows), 1 << 20):
            r, c = rows[s : s + (1 << 20)], cols[s : s + (1 << 20)]
            exact[s : s + len(r)] = ((q[r].double() - self.bank[c].double()) ** 2).sum(1)
        best = torch.full((len(block),), float("inf"), dtype=torch.float64, device=device)
        best = best.scatter_reduce(0, rows, exact, reduce="amin")
        big = torch.full((len(block),), len(self.memory), dtype=torch.int64, device=device)
        original = torch.from_numpy(self.order).to(device)[cols]  # ties go by the original index
        candidates = torch.where(exact == best[rows], original, len(self.memory))
        winner = big.scatter_reduce(0, rows, candidates, reduce="amin")
        return best.float().cpu().numpy()[:, None], winner.cpu().numpy()[:, None], len(rows) + len(block)


@njit(fastmath={"reassoc", "contract", "nsz"}, inline="always")
def _exact(a, b):
    """|a - b|^2 summed in float64 over float32 rows (the order of the sum is free: float64 keeps it exact
    to about d * 2^-53 relative)."""
    total = 0.0
    for t in range(a.shape[0]):
        diff = np.float64(a[t]) - np.float64(b[t])
        total += diff * diff
    return total


@njit(fastmath={"reassoc", "contract", "nsz"}, inline="always")
def _exact_part(a, b, lo, hi):
    """|a - b|^2 over coordinates lo..hi, summed in float64."""
    total = 0.0
    for t in range(lo, hi):
        diff = np.float64(a[t]) - np.float64(b[t])
        total += diff * diff
    return total


@njit(inline="always")
def _insert(best_d, best_i, distance, index):
    """Insert (distance, index) into the sorted k-best lists (by distance, then index) when it belongs."""
    k = len(best_d)
    if distance > best_d[k - 1] or (distance == best_d[k - 1] and index >= best_i[k - 1]):
        return
    p = k - 1
    while p > 0 and (best_d[p - 1] > distance or (best_d[p - 1] == distance and best_i[p - 1] > index)):
        best_d[p] = best_d[p - 1]
        best_i[p] = best_i[p - 1]
        p -= 1
    best_d[p] = distance
    best_i[p] = index


@njit(fastmath=True, cache=True)
def _row_min(dots, bank_sq):  # pragma: no cover - compiled by numba
    """min over j of |b'_j|^2 - 2 q'.b'_j (vectorised: the order of the comparisons is free)."""
    low = np.float32(np.inf)
    for j in range(len(dots)):
        low = min(low, bank_sq[j] - np.float32(2.0) * dots[j])
    return low


@njit(nogil=True, cache=True)
def _refine(queries_of_block, bank, first, k_dim, best):  # pragma: no cover - compiled by numba
    """Steps 2 and 3 for every query row of the block against the bank tile that starts at row ``first``
    (``dots`` = q'_k . b'_k over the tile), updating the k best (``best_d``, ``best_i``, sorted, float64);
    returns the exact distances computed. Before its first exact distance a query takes the k rows of
    smallest bound in the tile; a row the bound keeps goes through a cascade first: its bound plus its
    rotated distance over the remaining coordinates, 32 at a time (largest variance first), dropped as soon
    as the sum exceeds the cut. ``queries_of_block`` = (dots, |q'_k|^2, rotated queries, queries, e1, e2);
    ``bank`` = (|b'_k|^2 and rotated rows in tile order, the bank in its own order, the bank row at each
    tile position); ``best`` = (distances, indices)."""
    dots, q_sq, q_rot, queries, e1, e2 = queries_of_block
    bank_sq, bank_rot, memory, order = bank
    best_d, best_i = best
    num_q, tile = dots.shape
    dim = q_rot.shape[1]
    k = best_d.shape[1]
    keep = np.empty(tile, np.int64)
    cand_v = np.empty(k, np.float32)
    cand_i = np.empty(k, np.int64)
    count = 0
    for i in range(num_q):
        row = dots[i]
        shift = np.float64(q_sq[i])
        if best_d[i, k - 1] == np.inf:  # the first upper bound: the k rows of smallest bound
            cand_v[:] = np.inf
            cand_i[:] = -1
            if k == 1:
                low = _row_min(row, bank_sq[first : first + tile])
                near = low + abs(low) * np.float32(1e-6) + np.float32(1e-30)
                for j in range(tile):
                    if bank_sq[first + j] - np.float32(2.0) * row[j] <= near:
                        cand_i[0] = j
                        break
                if cand_i[0] < 0:
                    cand_i[0] = 0
            else:
                for j in range(tile):
                    v = bank_sq[first + j] - np.float32(2.0) * row[j]
                    if v < cand_v[k - 1]:
                        p = k - 1
                        while p > 0 and cand_v[p - 1] > v:
                            cand_v[p] = cand_v[p - 1]
                            cand_i[p] = cand_i[p - 1]
                            p -= 1
                        cand_v[p] = v
                        cand_i[p] = j
            for c in range(k):
                if cand_i[c] >= 0:
                    j = first + cand_i[c]
                    seen = False
                    for b in range(k):
                        seen = seen or best_i[i, b] == order[j]
                    if not seen:
                        _insert(best_d[i], best_i[i], _exact(queries[i], memory[order[j]]), order[j])
                        count += 1
        if best_d[i, k - 1] == np.inf:
            cut = np.inf
        else:
            cut = (np.sqrt(best_d[i, k - 1]) * (1 + 1e-9) + e2[i]) ** 2
        limit = cut + e1[i] - shift
        limit32 = np.float32(min(limit + abs(limit) * 1e-6 + 1e-30, 3e38))  # rounded up: the branch-free pass
        kept = 0
        for j in range(tile):  # branch-free: every row is written, the count moves when it is kept
            keep[kept] = j
            kept += bank_sq[first + j] - np.float32(2.0) * row[j] <= limit32
        for s in range(kept):  # in index order, with the cut following the k-th best found
            j = keep[s]
            bound = np.float64(bank_sq[first + j] - np.float32(2.0) * row[j]) + shift
            if bound > cut + e1[i]:
                continue
            j += first
            seen = False
            for b in range(k):
                seen = seen or best_i[i, b] == order[j]
            if seen:
                continue
            partial = max(bound - e1[i], 0.0)  # a lower bound on the first k_dim coordinates' part
            t = k_dim
            while t < dim and partial <= cut:
                stop = min(dim, t + 32)
                partial += _exact_part(q_rot[i], bank_rot[j], t, stop)
                t = stop
            if partial > cut:
                continue
            count += 1
            distance = _exact(queries[i], memory[order[j]])
            if distance < best_d[i, k - 1] or (distance == best_d[i, k - 1] and order[j] < best_i[i, k - 1]):
                _insert(best_d[i], best_i[i], distance, order[j])
                if best_d[i, k - 1] < np.inf:
                    cut = (math.sqrt(best_d[i, k - 1]) * (1 + 1e-9) + e2[i]) ** 2
    return count
