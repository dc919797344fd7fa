"""Exact nearest neighbours that skip most of the bank: a lower bound from the bank's leading principal
components and the norm of the rest, exact distances only for the rows the bound cannot exclude.

Over 300 lines: the fit, the margins and the two refinements (numba, torch) are one exactness argument; split
up, a margin could change in one place and not the other.

Fit once per bank: its mean ``m`` and an orthonormal basis ``V`` (eigenvectors of its covariance, float64,
largest variance first). A rotation keeps every distance, |q - b| = |(q - m) V - (b - m) V|. Split a rotated
point x' into its first ``k`` coordinates x'_k and the rest x'_r, and give it the (k + 1)-vector
x^ = (x'_k, |x'_r|). Then L(q, b) = |q^ - b^|^2 = |q'_k - b'_k|^2 + (|q'_r| - |b'_r|)^2 never exceeds |q - b|^2
(the triangle inequality in the rest), and on patch features a few dozen components hold most of the variance,
so L is tight: on ELPV's 256-d patch features against a 10 % coreset, with the exact nearest distance as U,
64 components leave 0.16 % of the pairs, 64 and the norm of the rest 0.11 %, 32 and the norm 1.3 %.

Search, per block of 1,024 queries and tile of 256 bank rows (the bank's rows in a fixed random order, so
the first tile is a sample of the whole bank):

1. L - |q^|^2 = |b^|^2 - 2 q^ . b^ for every (query, row) pair of the tile as ONE matrix product in k + 2
   dimensions (the query (q^, 1) against the row (-2 b^, |b^|^2)): about k / d of the flat search's arithmetic,
   its output (1 MiB) kept in cache.
2. First, per query block, the same product against the bank's first 4,096 rows (a random sample): the
   max(k, 8) rows of smallest L there and their exact distances give the first upper bound U of the answer,
   and step 3 runs on that product as on a tile (the tiles start after it: U only falls).
3. One vectorised pass over each query's row of the product marks the rows the margin cannot put above U (a
   byte each, read back eight at a time: most words are zero); every marked row goes through a cascade (its
   rotated distance over the next 32 coordinates, largest variance first, plus the difference of the norms
   of what remains, dropped as soon as that passes the cut) and, if it survives, gets its exact distance; U
   follows the k-th best exact distance found so far. The rotated coordinates after the first k are stored
   step-major, so a step reads 128 contiguous bytes of a row.

**Exactness.** An exact distance is a float64 sum over the original float32 coordinates, rounded once to
float32: within half a float32 ulp of the true distance (the flat search's error is up to about
d * 2^-24 (|q|^2 + |b|^2), its GEMM form). A row is skipped only when its bound, after a margin, exceeds U:
the computed L is off from L over the float32 vectors by at most e1 = 8 (k + 10) 2^-24 (|q^|^2 + 2 max |b^|^2)
(the float32 matrix product with the folded norm, any summation order); the rotated coordinates, rounded once
from float64, move each point by at most 2^-24 |x - m|, and the float32 norm of its rest by as much again, so
its (k + 1)-vector moves by at most 2 * 2^-24 |x - m| and a distance by at most e2 = 3 * 2^-24 (|q - m| +
max |b - m|) (the third for the float64 rotation). A row is skipped only if sqrt(L - e1) - e2 > sqrt(U)
(1 + 1e-9): its true distance exceeds U. So every row at distance <= U is checked, and the answer is the exact
nearest row (first index on equal distances), the k nearest in (distance, index) order. Against the flat
search it differs only where the flat search's own rounding chose between rows whose distances lie within
its error (tests and bench/ count them).

The cascade's sums are float64 over the float32 rotated coordinates and their float64 suffix norms; its start,
L less e1 and less the float32 norms' part, is a lower bound on the first k coordinates' part, so e2 covers it
too. CPU: one worker thread per core, each taking whole query blocks: the products through single-threaded
torch, steps 2 and 3 in a numba kernel that releases the GIL. CUDA: the whole bank per query block, the same
bound with torch operations (k = 1; larger k falls back to the flat search).

"""

from __future__ import annotations

import math

import numpy as np
import torch
from numba import njit

UNIT = 2.0**-24  # float32 unit roundoff
PCA_SAMPLE = 65536  # bank rows the basis is fitted on (any orthonormal basis is exact; this one is tight)
# CPU: a (1024, 256) float32 product block is 1 MiB, it stays in the core's cache; measured on ELPV's 256-d
# patch features at k = 32 (product and pass): 1.0 s against 1.3-1.4 s for (256, 4096) and (512, 512); on a
# 2-core AMD EPYC (512 KiB L2) at k = 64 still the fastest of five shapes: 2.2-2.4 s against 2.5-3.1 s for
# (512, 256), (1024, 128), (256, 512) and (512, 128)
TILE_QUERIES, TILE_ROWS = 1024, 256
INITIAL, SEEDS = 4096, 8  # a query's first upper bound: the exact distances of the 8 rows of smallest bound in
# the bank's first 4,096 rows (a random sample)
STEP = 32  # the cascade's coordinates per step, and the rows per group of the pass


def bound_dim(dim: int) -> int:
    """Components of the bound, beside the norm of the rest: 64 up to 512-d features, 128 above (measured on
    ELPV's patch features against a 10 % coreset, 20k queries, faiss's flat search in the same run: at 256-d 32,
    48 and 64 took 1.8-2.5, 1.7 and 1.6 s against faiss's 3.4-4.5; at 1024-d 64, 96 and 128 took 4.9, 3.6 and
    3.3 s against 15.4)."""
    return min(dim, 64 if dim <= 512 else 128)


def _suffix_norms(rotated: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """(N, len(starts)) float64: |x'_{t:}| over the float32 rotated coordinates from each start t on."""
    squares = rotated.astype(np.float64) ** 2
    tails = np.cumsum(squares[:, ::-1], axis=1)[:, ::-1]  # tails[:, t] = sum over t..d-1
    tails = np.concatenate([tails, np.zeros((len(rotated), 1))], axis=1)
    return np.sqrt(np.maximum(tails[:, starts], 0.0))


class BoundIndex:
    """A memory bank prepared for :meth:`search`: its rotation, the first ``k`` rotated coordinates with the norm
    of the rest, and the suffix norms of the cascade."""

    def __init__(self, memory: np.ndarray, k: int | None = None, device: torch.device | None = None):
        self.device = device if device is not None else torch.device("cpu")
        memory = np.asarray(memory, dtype=np.float32)
        num, dim = memory.shape
        # rows in a fixed random order: the first tile a query meets is a sample of the whole bank, so its first
        # upper bound is already tight (the bank's own order groups rows by image); ties go by the original index
        self.order = np.random.default_rng(0).permutation(num).astype(np.int64)
        self.memory = np.ascontiguousarray(memory)  # no copy when it is float32 already; read through ``order``
        self.k = min(dim, k or bound_dim(dim))
        # the cascade's steps: t = k, k + STEP, ... < dim, then dim (nothing left)
        self.starts = np.append(np.arange(self.k, dim, STEP), dim).astype(np.int64)
        rng = np.random.default_rng(0)
        sample = self.memory if num <= PCA_SAMPLE else self.memory[np.sort(rng.choice(num, PCA_SAMPLE, replace=False))]
        self.mean = sample.astype(np.float64).mean(axis=0)
        centred = torch.from_numpy((sample - self.mean.astype(np.float32)).astype(np.float32))
        covariance = (centred.T @ centred).double().numpy()  # only the basis' tightness depends on its rounding
        _, vectors = np.linalg.eigh(covariance)  # orthonormal to float64 rounding: the bound stays valid
        self.basis = np.ascontiguousarray(vectors[:, ::-1])
        rotated, norms, suffix = self.rotate(self.memory, self.order)  # in tile order
        self.bank_steps = self._steps(rotated)  # the cascade of step 3, step-major
        self.bank_suffix = suffix
        hat = self._hat(rotated, suffix)
        hat_sq = (hat.astype(np.float64) ** 2).sum(1)
        # the product's right side: (-2 b^, |b^|^2), so that q^ . (-2 b^) + |b^|^2 is L - |q^|^2
        folded = np.concatenate([-2.0 * hat, hat_sq.astype(np.float32)[:, None]], axis=1)
        self.bank_hat = torch.from_numpy(np.ascontiguousarray(folded)).to(self.device)
        self.bank_hat_sq_max = float(hat_sq.max()) if num else 0.0
        self.bank_norm_max = float(norms.max()) if num else 0.0
        # CUDA refines on the device, rows in tile order; the CPU reads ``memory[order[j]]`` (no second copy)
        self.bank = torch.from_numpy(self.memory[self.order]).to(self.device) if self.device.type == "cuda" else None

    def _hat(self, rotated: np.ndarray, suffix: np.ndarray) -> np.ndarray:
        """(N, k + 1) float32: the first k rotated coordinates and the norm of the rest."""
        return np.ascontiguousarray(np.concatenate([rotated[:, : self.k], suffix[:, :1].astype(np.float32)], axis=1))

    def _steps(self, rotated: np.ndarray) -> np.ndarray:
        """(steps, N, STEP) float32: the rotated coordinates after the first k, STEP at a time, zero-padded (a
        step's rows are contiguous: the cascade reads 128 bytes of a row per step)."""
        rest = rotated[:, self.k :]
        steps = len(self.starts) - 1
        padded = np.zeros((len(rotated), steps * STEP), np.float32)
        padded[:, : rest.shape[1]] = rest
        return np.ascontiguousarray(padded.reshape(len(rotated), steps, STEP).transpose(1, 0, 2))

    def rotate(self, rows: np.ndarray, order: np.ndarray | None = None):
        """(rotated coordinates, float32; |x - m|, float64; suffix norms of the rotated float32 coordinates at
        ``starts``, float64) of ``rows`` (taken in ``order`` when given), in float64 then rounded once."""
        out = np.empty((len(rows), rows.shape[1]), np.float32)
        norms = np.empty(len(rows), np.float64)
        suffix = np.empty((len(rows), len(self.starts)), np.float64)
        basis = torch.from_numpy(self.basis)
        for start in range(0, len(rows), 65536):
            part = rows[start : start + 65536] if order is None else rows[order[start : start + 65536]]
            centred = torch.from_numpy(part.astype(np.float64) - self.mean)
            out[start : start + 65536] = torch.mm(centred, basis).numpy()
            norms[start : start + 65536] = torch.sqrt((centred * centred).sum(1)).numpy()
            suffix[start : start + 65536] = _suffix_norms(out[start : start + 65536], self.starts)
        return out, norms, suffix

    def _queries(self, block: np.ndarray):
        """A query block's side: (rotated, suffix norms, (q^, 1) float32 for the product, |q^|^2 float64, e1, e2)."""
        rotated, norms, suffix = self.rotate(block)
        hat = self._hat(rotated, suffix)
        hat_sq = (hat.astype(np.float64) ** 2).sum(1)
        left = np.concatenate([hat, np.ones((len(block), 1), np.float32)], axis=1)
        e1 = 8.0 * (self.k + 10) * UNIT * (hat_sq + 2.0 * self.bank_hat_sq_max)
        e2 = 3.0 * UNIT * (norms + self.bank_norm_max)
        return self._steps(rotated), suffix, torch.from_numpy(left), hat_sq, e1, e2

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
        bank = (self.bank_steps, self.bank_suffix, self.bank_hat[:, self.k].numpy() * np.float32(-0.5))
        bank += (self.memory, self.order)

        def work(start: int) -> int:
            block = queries[start : start + TILE_QUERIES]
            best_d = np.full((len(block), k), np.inf)
            best_i = np.full((len(block), k), len(self.memory), np.int64)  # original indices
            steps, suffix, left, shift, e1, e2 = self._queries(block)
            query_side = (steps, suffix, left[:, self.k].numpy(), block, shift, e1, e2)
            buffer = torch.empty((len(block), min(TILE_ROWS, len(self.memory))), dtype=torch.float32)
            computed = 0
            # the first upper bound from a larger sample: the first INITIAL rows (a random sample of the bank)
            head = min(INITIAL, len(self.memory))
            products = torch.mm(left, self.bank_hat[:head].T)
            computed += _refine(products.numpy(), query_side, bank, 0, (best_d, best_i, SEEDS))
            for first in range(head, len(self.memory), TILE_ROWS):  # the sample's rows are done: the cut only falls
                last = min(len(self.memory), first + TILE_ROWS)
                products = torch.mm(left, self.bank_hat[first:last].T, out=buffer[:, : last - first])
                computed += _refine(products.numpy(), query_side, bank, first, (best_d, best_i, SEEDS))
            distances[start : start + len(block)], indices[start : start + len(block)] = best_d, best_i
            return computed

        computed = 0
        previous = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            with ThreadPoolExecutor(max_workers=threads) as pool:
                for number, n in enumerate(pool.map(work, blocks)):
                    computed += n
                    if progress is not None and number % 16 == 0:
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
            _, _, left, shift, e1, e2 = self._queries(block)
            products = torch.mm(left.to(self.device), self.bank_hat.T, out=buffer[: len(block)])
            d, i, n = self._refine_torch(products, shift, block, e1, e2)
            distances[start : start + len(block)], indices[start : start + len(block)] = d, i
            computed += int(n)
        return distances, indices, computed

    def _refine_torch(self, products, shift: np.ndarray, block: np.ndarray, e1: np.ndarray, e2: np.ndarray):
        """Steps 2 and 3 with torch operations (k = 1): every surviving pair at once, then the first minimum."""
        device = products.device
        q = torch.from_numpy(block).to(device)
        first = products.argmin(dim=1)
        upper = ((q.double() - self.bank[first].double()) ** 2).sum(1)
        e1_t = torch.from_numpy(e1).to(device)
        e2_t = torch.from_numpy(e2).to(device)
        limit = (upper.sqrt() * (1 + 1e-9) + e2_t) ** 2 + e1_t - torch.from_numpy(shift).to(device)
        rows, cols = torch.nonzero(products.double() <= limit[:, None], as_tuple=True)
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
def _step_part(a, b):
    """|a - b|^2 over one cascade step's STEP coordinates, summed in float64."""
    total = 0.0
    for t in range(STEP):
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


@njit(inline="always")
def _cut(best_d, e2):
    """The cut on a lower bound of the squared distance over float32 vectors: (sqrt(U) (1 + 1e-9) + e2)^2."""
    if best_d == np.inf:
        return np.inf
    return (math.sqrt(best_d) * (1 + 1e-9) + e2) ** 2


@njit(inline="always")
def _limit32(cut, e1, shift):
    """The cut on the product's float32 output, rounded up: cut + e1 - |q^|^2."""
    limit = cut + e1 - shift
    return np.float32(min(limit + abs(limit) * 1e-6 + 1e-30, 3e38))


@njit(nogil=True, cache=True)
def _refine(products, query_side, bank, first, best):  # pragma: no cover - compiled by numba
    """Steps 2 and 3 for every query row of the block against the bank tile that starts at row ``first``
    (``products`` = |b^|^2 - 2 q^ . b^ over the tile), updating the k best (``best_d``, ``best_i``, sorted,
    float64); returns the exact distances computed. Before its first exact distance a query takes the
    max(k, seeds) rows of smallest bound in the tile; then one vectorised pass marks the rows whose product
    the margin cannot put above the cut (a byte each), read back eight at a time, and every marked row goes
    through :func:`_check`. ``query_side`` = (rotated queries step-major, their suffix norms, their float32 norm
    of the rest, queries, |q^|^2, e1, e2); ``bank`` = (rotated rows step-major and their suffix norms in tile
    order, their float32 norm of the rest, the bank in its own order, the bank row at each tile position);
    ``best`` = (distances, indices, seeds)."""
    q_steps, q_suffix, q_rest, queries, shift, e1, e2 = query_side
    bank_steps, bank_suffix, bank_rest, memory, order = bank
    best_d, best_i, seeds = best
    num_q, tile = products.shape
    k = best_d.shape[1]
    seeds = max(k, seeds)
    cand_v = np.empty(seeds, np.float32)
    cand_i = np.empty(seeds, np.int64)
    mask = np.zeros(-(-tile // 8) * 8, np.uint8)  # the padding stays 0
    words = mask.view(np.uint64)
    count = 0
    for i in range(num_q):
        row = products[i]
        if best_d[i, k - 1] == np.inf:  # the first upper bound: the k rows of smallest bound
            cand_v[:] = np.inf
            cand_i[:] = -1
            for j in range(tile):
                v = row[j]
                if v < cand_v[seeds - 1]:
                    p = seeds - 1
                    while p > 0 and cand_v[p - 1] > v:
                        cand_v[p] = cand_v[p - 1]
                        cand_i[p] = cand_i[p - 1]
                        p -= 1
                    cand_v[p] = v
                    cand_i[p] = j
            for c in range(seeds):
                if cand_i[c] >= 0:
                    j = first + cand_i[c]
                    seen = False
                    for b in range(k):
                        seen = seen or best_i[i, b] == order[j]
                    if not seen:
                        _insert(best_d[i], best_i[i], _exact(queries[i], memory[order[j]]), order[j])
                        count += 1
        cut = _cut(best_d[i, k - 1], e2[i])
        limit32 = _limit32(cut, e1[i], shift[i])
        for j in range(tile):  # vectorised: a byte per row, read back eight at a time
            mask[j] = row[j] <= limit32
        for w in range(len(words)):  # in index order, with the cut following the k-th best found
            if words[w] == 0:
                continue
            for j in range(8 * w, 8 * w + 8):
                if mask[j] and _check(row[j], (i, first + j, cut), query_side, bank, best):
                    count += 1
                    cut = _cut(best_d[i, k - 1], e2[i])
    return count


@njit(inline="always")
def _check(value, pair, query_side, bank, best):
    """Tile position ``jj`` of the bank, kept by the pass for query ``i`` (``pair`` = (i, jj, cut); ``value``
    its product): its bound against the current ``cut``, then the cascade, then its exact distance, inserted
    where it belongs. Returns 1 when it computed the exact distance, 0 when the row was dropped before."""
    i, jj, cut = pair
    q_steps, q_suffix, q_rest, queries, shift, e1, _ = query_side
    bank_steps, bank_suffix, bank_rest, memory, order = bank
    best_d, best_i, _ = best
    k = best_d.shape[1]
    bound = np.float64(value) + shift[i]
    if bound > cut + e1[i]:
        return 0
    for b in range(k):
        if best_i[i, b] == order[jj]:
            return 0
    rest = np.float64(q_rest[i]) - np.float64(bank_rest[jj])
    partial = max(bound - e1[i] - rest * rest, 0.0)  # a lower bound on the first k coordinates' part
    for s in range(len(q_steps)):
        partial += _step_part(q_steps[s, i], bank_steps[s, jj])
        rest = q_suffix[i, s + 1] - bank_suffix[jj, s + 1]
        if partial + rest * rest > cut:
            return 0
    _insert(best_d[i], best_i[i], _exact(queries[i], memory[order[jj]]), order[jj])
    return 1
