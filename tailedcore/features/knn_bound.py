"""Exact nearest neighbours that skip most of the bank: a lower bound from the bank's leading principal
components and the norm of the rest, exact distances only for the rows the bound cannot exclude.

Over 300 lines: the fit, the margins, the two products and the two refinements (numba, torch) are one
exactness argument; split up, a margin could change in one place and not the other.

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
   its output (1 MiB) kept in cache. Where the CPU multiplies bfloat16 at least 1.4x as fast as float32 (AVX-512
   BF16, AMX: on the 2-core AMD EPYC here 2.1x), the product is -2 q^ . b^ in bfloat16 over k + 1 dimensions
   (a multiple of 32: k = 95 or 159) and the norms are added in the pass, each pair with its own margin.
2. First, per query block, the same product against the bank's first 4,096 rows (a random sample): the
   max(k, 8) rows of smallest L there and their exact distances give the first upper bound U of the answer,
   and step 3 runs on that product as on a tile (the tiles start after it: U only falls).
3. One vectorised pass over each query's row of the product marks the rows the margin cannot put above U (a
   byte each, read back eight at a time: most words are zero); every marked row goes through a cascade (its
   rotated distance over the next 32 coordinates, largest variance first, plus the difference of the norms
   of what remains, dropped as soon as that passes the cut) and, if it survives, gets its exact distance; U
   follows the k-th best exact distance found so far. The rotated coordinates after the first k are stored
   step-major, so a step reads 128 contiguous bytes of a row; the cascade stops DEPTH coordinates after the
   first k (a row that survives it gets its exact distance), so queries are rotated only that far.

**Exactness.** An exact distance is a float64 sum over the original float32 coordinates, rounded once to
float32: within half a float32 ulp of the true distance (the flat search's error is up to about
d * 2^-24 (|q|^2 + |b|^2), its GEMM form). A row is skipped only when its bound, after a margin, exceeds U:
the computed L is off from L over the float32 vectors by at most e1 = 8 (k + 10) 2^-24 (|q^|^2 + 2 max |b^|^2)
(the float32 matrix product with the folded norm, any summation order); the rotated coordinates, rounded once
from float64, move each point by at most 2^-24 |x - m|, and the float32 norm of its rest by as much again, so
its (k + 1)-vector moves by at most 2 * 2^-24 |x - m| and a distance by at most e2 = 3 * 2^-24 (|q - m| +
max |b - m|) (the third for the float64 rotation). The norms of the rest are sqrt(|x - m|^2 - the squares of
the kept coordinates), in float64: off by at most r |x - m|, r = sqrt((4 d^1.5 + 4 d) 2^-53 + 2 |V^T V - I|)
(the float64 rotation's and sums' rounding in the worst case, and V's distance from orthonormal: 4e-6 at
1024-d), so e2 = (3 * 2^-24 + 2 r) (|q - m| + max |b - m|). A row
is skipped only if sqrt(L - e1) - e2 > sqrt(U) (1 + 1e-9): its true distance exceeds U. So every row at
distance <= U is checked, and the answer is the exact nearest row (first index on equal distances), the k
nearest in (distance, index) order. Against the flat search it differs only where the flat search's own
rounding chose between rows whose distances lie within its error (tests and bench/ count them).

The bfloat16 product rounds each input to nearest (relative 2^-8), multiplies and sums in float32 in any
order (at most n 2^-24 / (1 - n 2^-24) of the sum of |terms| for n terms) and rounds the output once more to
bfloat16; with sum |q_t b_t| <= |q^| |b^| that puts -2 q^ . b^ within c |q^| |b^| of its value over the
float32 vectors, c = 2 (u + (1 + u)((1 + u)^2 (1 + g) - 1)) ~ 0.023 (u = 2^-8, see :func:`_bf16_error`). So
there L - e1 is |q^|^2 + |b^|^2 - 2 q^ . b^ - c |q^| |b^| (float64, less a relative 1e-12), and the pass
compares the product against a float32 threshold rounded so that it only keeps more rows. Under either
product the answer is the same, only the rows the pass keeps differ.

The cascade's sums are float64 over the float32 rotated coordinates and their float64 suffix norms; its start,
L less e1 and less the float32 norms' part, is a lower bound on the first k coordinates' part, so e2 covers it
too. CPU: one worker thread per core, each taking whole query blocks: the products through single-threaded
torch, steps 2 and 3 in a numba kernel that releases the GIL. CUDA: the whole bank per query block, the same
bound with torch operations (k = 1; larger k falls back to the flat search).

"""

from __future__ import annotations

import gc
import math

import numpy as np
import torch
from numba import njit, types
from numba.extending import overload

UNIT = 2.0**-24  # float32 unit roundoff
PCA_SAMPLE = 65536  # bank rows the basis is fitted on (any orthonormal basis is exact; this one is tight)
# CPU: a (1024, 256) float32 product block is 1 MiB, it stays in the core's cache; measured on ELPV's 256-d
# patch features at k = 32 (product and pass): 1.0 s against 1.3-1.4 s for (256, 4096) and (512, 512); on a
# 2-core AMD EPYC (512 KiB L2) at k = 64 still the fastest of five shapes: 2.2-2.4 s against 2.5-3.1 s for
# (512, 256), (1024, 128), (256, 512) and (512, 128)
TILE_QUERIES, TILE_ROWS = 1024, 256
# the bfloat16 product's output is half the size: 512 rows (the same 1 MiB; on ELPV's features 1.19 s against
# 1.34 at 256-d and 2.39 against 2.45 at 1024-d, 128 rows 1.41 s, 1,024 rows or 2,048 queries within the noise)
TILE_ROWS_BF16 = 512
INITIAL, SEEDS = 4096, 8  # a query's first upper bound: the exact distances of the 8 rows of smallest bound in
# the bank's first 4,096 rows (a random sample)
STEP = 32  # the cascade's coordinates per step, and the rows per group of the pass
DEPTH = 192  # the cascade's coordinates after the first k: past them a row that survives gets its exact distance
# (on ELPV's 1024-d features 5 % of the pairs that pass the product survive 4 steps; rotating every query to
# full depth was a fifth of the search; 128, 192 and 256 within the run-to-run noise there)
BF16 = 2.0**-8  # bfloat16 unit roundoff (8-bit significand)


def bound_dim(dim: int, precision: str = "float32") -> int:
    """Components of the bound, beside the norm of the rest: 64 up to 512-d features, 128 above (measured on
    ELPV's patch features against a 10 % coreset, 20k queries, faiss's flat search in the same run: at 256-d 32,
    48 and 64 took 1.8-2.5, 1.7 and 1.6 s against faiss's 3.4-4.5; at 1024-d 64, 96 and 128 took 4.9, 3.6 and
    3.3 s against 15.4). With the bfloat16 product 95 and 159, so that k + 1 is a multiple of 32 (the same
    run, interleaved, best of two or three: at 256-d 95, 96 and 127 took 1.25, 1.31 and 1.42 s against faiss's
    3.86; at 1024-d 127, 159 and 191 took 2.60, 2.42 and 2.49 s against 14.5)."""
    if precision == "bfloat16":
        return min(dim, 95 if dim <= 512 else 159)
    return min(dim, 64 if dim <= 512 else 128)


class BoundIndex:
    """A memory bank prepared for :meth:`search`: its rotation, the first ``k`` rotated coordinates with the norm
    of the rest, and the cascade's coordinates and suffix norms. ``precision`` is that of the product of step 1
    (``float32``, ``bfloat16`` or ``auto``: bfloat16 where this CPU multiplies it at least 1.4x as fast, measured
    on one tile); the neighbours and distances are the same under both, only the time differs."""

    def __init__(
        self, memory: np.ndarray, k: int | None = None, device: torch.device | None = None, precision: str = "auto"
    ):
        self.device = device if device is not None else torch.device("cpu")
        memory = np.asarray(memory, dtype=np.float32)
        num, dim = memory.shape
        # rows in a fixed random order: the first tile a query meets is a sample of the whole bank, so its first
        # upper bound is already tight (the bank's own order groups rows by image); ties go by the original index
        self.order = np.random.default_rng(0).permutation(num).astype(np.int64)
        self.memory = np.ascontiguousarray(memory)  # no copy when it is float32 already; read through ``order``
        self.precision = "float32" if self.device.type == "cuda" else _precision(precision, 96)
        self.k = min(dim, k or bound_dim(dim, self.precision))
        # the bfloat16 bound's coefficient c (see _bf16_error), or -1 for the float32 product: the kernel's switch
        self.coefficient = _bf16_error(self.k + 1) if self.precision == "bfloat16" else -1.0
        self.depth = min(dim, self.k + DEPTH)  # rotated coordinates kept per point
        # the cascade's steps: t = k, k + STEP, ... < depth, then depth
        self.starts = np.append(np.arange(self.k, self.depth, STEP), self.depth).astype(np.int64)
        rng = np.random.default_rng(0)
        sample = self.memory if num <= PCA_SAMPLE else self.memory[np.sort(rng.choice(num, PCA_SAMPLE, replace=False))]
        self.mean = sample.astype(np.float64).mean(axis=0)
        centred = torch.from_numpy((sample - self.mean.astype(np.float32)).astype(np.float32))
        covariance = (centred.T @ centred).double().numpy()  # only the basis' tightness depends on its rounding
        _, vectors = np.linalg.eigh(covariance)  # orthonormal to float64 rounding: the bound stays valid
        # the rest's norms come from |x - m|^2 less the kept coordinates' squares, in float64: off by at most
        # r |x - m|, r^2 = (4 d^1.5 + 4 d) 2^-53 + 2 |V^T V - I| (each rotated coordinate within d 2^-53 |x - m|
        # in any summation order, the sums' and |x - m|^2's rounding, and how far V is from orthonormal)
        drift = float(np.linalg.norm(vectors.T @ vectors - np.eye(dim)))
        if drift > 1e-10:  # never seen (1e-13 at 1024-d); the cut's 1 + 1e-9 needs it far below 1e-9
            vectors = np.linalg.qr(vectors)[0]
            drift = float(np.linalg.norm(vectors.T @ vectors - np.eye(dim)))
        self.rest_error = math.sqrt((4.0 * dim**1.5 + 4.0 * dim) * 2.0**-53 + 2.0 * drift)
        self.basis = np.ascontiguousarray(vectors[:, ::-1][:, : self.depth])
        rotated, norms, suffix = self.rotate(self.memory, self.order)  # in tile order
        self.bank_steps = self._steps(rotated)  # the cascade of step 3, step-major
        self.bank_suffix = suffix
        hat = self._hat(rotated, suffix)
        hat_sq = (hat.astype(np.float64) ** 2).sum(1)
        # the float32 product's right side: (-2 b^, |b^|^2), so that q^ . (-2 b^) + |b^|^2 is L - |q^|^2
        folded = np.concatenate([-2.0 * hat, hat_sq.astype(np.float32)[:, None]], axis=1)
        self.bank_hat = torch.from_numpy(np.ascontiguousarray(folded)).to(self.device)
        self.bank_hat_sq_max = float(hat_sq.max()) if num else 0.0
        self.bank_norm_max = float(norms.max()) if num else 0.0
        # the bfloat16 product's right side: b^ alone (its norm would lose its low bits), with |b^|^2 and |b^|
        self.bank_bf16 = torch.from_numpy(hat).to(torch.bfloat16)
        self.bank_hat_sq, self.bank_hat_norm = hat_sq, np.sqrt(hat_sq)
        # the pass's float32 copies, rounded down (|b^|^2) and up (|b^|) so that its threshold only keeps more
        self.bank_sq_low = np.nextafter(hat_sq.astype(np.float32), np.float32(-np.inf)).astype(np.float32)
        self.bank_norm_high = np.nextafter(np.sqrt(hat_sq).astype(np.float32), np.float32(np.inf)).astype(np.float32)
        # CUDA refines on the device, rows in tile order; the CPU reads ``memory[order[j]]`` (no second copy)
        self.bank = torch.from_numpy(self.memory[self.order]).to(self.device) if self.device.type == "cuda" else None

    def _hat(self, rotated: np.ndarray, suffix: np.ndarray) -> np.ndarray:
        """(N, k + 1) float32: the first k rotated coordinates and the norm of the rest."""
        return np.ascontiguousarray(np.concatenate([rotated[:, : self.k], suffix[:, :1].astype(np.float32)], axis=1))

    def _steps(self, rotated: np.ndarray) -> np.ndarray:
        """(steps, N, STEP) float32: the rotated coordinates from k to the depth, STEP at a time, zero-padded (a
        step's rows are contiguous: the cascade reads 128 bytes of a row per step)."""
        rest = rotated[:, self.k :]
        steps = len(self.starts) - 1
        padded = np.zeros((len(rotated), steps * STEP), np.float32)
        padded[:, : rest.shape[1]] = rest
        return np.ascontiguousarray(padded.reshape(len(rotated), steps, STEP).transpose(1, 0, 2))

    def rotate(self, rows: np.ndarray, order: np.ndarray | None = None):
        """(the first ``depth`` rotated coordinates, float32; |x - m|, float64; the norms of the rotated point
        from each of ``starts`` on, float64) of ``rows`` (taken in ``order`` when given), in float64, the
        coordinates rounded once. The norms are sqrt(|x - m|^2 - the squares before the start), so only the kept
        coordinates are rotated (a quarter of the work at 1024-d)."""
        out = np.empty((len(rows), self.depth), np.float32)
        norms = np.empty(len(rows), np.float64)
        suffix = np.empty((len(rows), len(self.starts)), np.float64)
        basis = torch.from_numpy(self.basis)
        for start in range(0, len(rows), 65536):
            part = rows[start : start + 65536] if order is None else rows[order[start : start + 65536]]
            centred = torch.from_numpy(part.astype(np.float64) - self.mean)
            rotated = torch.mm(centred, basis)
            total = (centred * centred).sum(1)
            before = torch.cumsum(rotated * rotated, dim=1)  # before[:, t - 1]: the squares of coordinates < t
            kept = torch.cat([torch.zeros(len(part), 1, dtype=torch.float64), before], dim=1)[:, self.starts]
            out[start : start + 65536] = rotated.numpy()
            norms[start : start + 65536] = torch.sqrt(total).numpy()
            suffix[start : start + 65536] = torch.sqrt(torch.clamp(total[:, None] - kept, min=0.0)).numpy()
        return out, norms, suffix

    def _queries(self, block: np.ndarray, precision: str | None = None):
        """A query block's side: (rotated step-major, suffix norms, the product's left side: (q^, 1) float32 or
        -2 q^ bfloat16, |q^|^2 float64, e1 (float32 product), e2, |q^| float64)."""
        rotated, norms, suffix = self.rotate(block)
        hat = self._hat(rotated, suffix)
        hat_sq = (hat.astype(np.float64) ** 2).sum(1)
        if (precision or self.precision) == "bfloat16":
            left = torch.from_numpy(-2.0 * hat).to(torch.bfloat16)  # -2 is exact: only the rounding of q^
            # e1: the slack of the pass's float32 threshold (rounding of its sum)
            e1 = 8.0 * UNIT * (self.bank_hat_sq_max + self.coefficient * np.sqrt(hat_sq * self.bank_hat_sq_max))
        else:
            left = torch.from_numpy(np.concatenate([hat, np.ones((len(block), 1), np.float32)], axis=1))
            e1 = 8.0 * (self.k + 10) * UNIT * (hat_sq + 2.0 * self.bank_hat_sq_max)
        e2 = (3.0 * UNIT + 2.0 * self.rest_error) * (norms + self.bank_norm_max)
        return self._steps(rotated), suffix, left, hat_sq, e1, e2, np.sqrt(hat_sq)

    def _query_side(self, block: np.ndarray) -> tuple:
        """(the kernel's ``query_side`` of a query block, the product's left side): see :func:`_refine`."""
        steps, suffix, left, shift, e1, e2, norm = self._queries(block)
        rest = suffix[:, 0].astype(np.float32)  # the float32 norm of the rest, as in the (k + 1)-vector
        return (steps, suffix, rest, block, shift, e1, e2, norm, self.coefficient), left

    def _bank_side(self) -> tuple:
        """What the refinement reads of the bank: (rotated rows step-major and their suffix norms in tile order,
        their float32 norm of the rest, the bank in its own order, the bank row at each tile position, and the
        bfloat16 bound's |b^|^2 and |b^| in float64 and float32, rounded for the pass)."""
        rest = self.bank_hat[:, self.k].numpy() * np.float32(-0.5)  # exact: the float32 norm of the rest
        first = (self.bank_steps, self.bank_suffix, rest, self.memory, self.order)
        return first + (self.bank_hat_sq, self.bank_hat_norm, self.bank_sq_low, self.bank_norm_high)

    def lower_bounds(self, queries: np.ndarray) -> np.ndarray:
        """(Q, N) float64, the bank in its own order: sqrt of the bound the kernel skips rows on (its
        :func:`_lower`, the float64 form the cascade starts from), less e2: never above the true distance. For
        the tests."""
        query_side, left = self._query_side(np.ascontiguousarray(queries, np.float32))
        right = self.bank_bf16 if self.coefficient >= 0 else self.bank_hat
        products = torch.mm(left, right.T)
        products = products.view(torch.int16).numpy().view(np.uint16) if self.coefficient >= 0 else products.numpy()
        lower = _lower_all(products, query_side, self._bank_side())
        out = np.empty_like(lower)
        out[:, self.order] = np.sqrt(np.maximum(lower, 0.0)) - query_side[6][:, None]
        return out

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
        bank = self._bank_side()
        bf16 = self.coefficient >= 0

        head = min(INITIAL, len(self.memory))
        # the first upper bound from a larger sample: the first INITIAL rows (a random sample of the bank); after
        # them the cut only falls. The tiles' right sides made once (Python's share of a tile is then a few us)
        width = TILE_ROWS_BF16 if bf16 else TILE_ROWS
        tiles = [(0, head)] + [
            (row, min(len(self.memory), row + width)) for row in range(head, len(self.memory), width)
        ]
        right = self.bank_bf16 if bf16 else self.bank_hat
        rights = [right[first:last].T for first, last in tiles]

        def work(start: int) -> int:
            block = queries[start : start + TILE_QUERIES]
            best_d = np.full((len(block), k), np.inf)
            best_i = np.full((len(block), k), len(self.memory), np.int64)  # original indices
            query_side, left = self._query_side(block)
            buffers = {}  # per tile width: the product's buffer and the kernel's view of it (uint16: bfloat16 bits)
            for first, last in {(0, head), tiles[-1], tiles[min(1, len(tiles) - 1)]}:
                buffer = torch.empty((len(block), last - first), dtype=right.dtype)
                view = buffer.view(torch.int16).numpy().view(np.uint16) if bf16 else buffer.numpy()
                buffers[last - first] = (buffer, view)
            computed = 0
            for (first, last), tile in zip(tiles, rights):
                buffer, products = buffers[last - first]
                torch.mm(left, tile, out=buffer)
                computed += _refine(products, query_side, bank, first, (best_d, best_i, SEEDS))
            distances[start : start + len(block)], indices[start : start + len(block)] = best_d, best_i
            return computed

        computed = 0
        previous, collecting = torch.get_num_threads(), gc.isenabled()
        torch.set_num_threads(1)
        gc.disable()  # the tiles' small objects set off collections of the whole heap (2-3 % of the search)
        try:
            with ThreadPoolExecutor(max_workers=threads) as pool:
                for number, n in enumerate(pool.map(work, blocks)):
                    computed += n
                    if progress is not None and number % 16 == 0:
                        progress.update(blocks[number])
        finally:
            torch.set_num_threads(previous)
            if collecting:
                gc.enable()
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
            _, _, left, shift, e1, e2, _ = self._queries(block, "float32")
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


def _widen(row, bits):  # pragma: no cover - replaced in compiled code by the overload below
    """A product row as float32: itself, or bfloat16 bits (uint16) widened into ``bits`` (exact)."""
    raise NotImplementedError


@overload(_widen)  # not inline="always": inlined at the IR level this returned wrong rows (numba 0.68)
def _widen_overload(row, bits):
    if row.dtype == types.uint16:

        def widen(row, bits):
            for j in range(len(row)):
                bits[j] = np.uint32(row[j]) << 16
            return bits.view(np.float32)

        return widen
    return lambda row, bits: row


@njit(nogil=True, cache=True)
def _refine(products, query_side, bank, first, best):  # pragma: no cover - compiled by numba
    """Steps 2 and 3 for every query row of the block against the bank tile that starts at row ``first``
    (``products``: |b^|^2 - 2 q^ . b^ over the tile in float32, or -2 q^ . b^ from bfloat16), updating the k
    best (``best_d``, ``best_i``, sorted, float64); returns the exact distances computed. Before its first
    exact distance a query takes the max(k, seeds) rows of smallest bound in the tile; then one vectorised pass
    marks the rows whose product the margin cannot put above the cut (a byte each), read back eight at a time,
    and every marked row goes through :func:`_check`. ``query_side`` = (rotated queries step-major, their suffix
    norms, their float32 norm of the rest, queries, |q^|^2, e1, e2, |q^|, the bfloat16 bound's coefficient c or
    -1 for the float32 product); ``bank`` = :meth:`BoundIndex._bank_side`; ``best`` = (distances, indices,
    seeds)."""
    queries, shift, e1, e2, q_norm, coefficient = query_side[3:]
    order, sq_low, norm_high = bank[4], bank[7], bank[8]
    best_d, best_i, seeds = best
    num_q, tile = products.shape
    k = best_d.shape[1]
    seeds = max(k, seeds)
    cand_v = np.empty(seeds, np.float32)
    cand_i = np.empty(seeds, np.int64)
    mask = np.zeros(-(-tile // 8) * 8, np.uint8)  # the padding stays 0
    words = mask.view(np.uint64)
    bf16 = coefficient >= 0
    sq_tile = sq_low[first : first + tile]
    norm_tile = norm_high[first : first + tile]
    count = 0
    widened = np.empty(tile, np.uint32)
    for i in range(num_q):
        row = _widen(products[i], widened)
        if best_d[i, k - 1] == np.inf:  # the first upper bound: the k rows of smallest bound
            cand_v[:] = np.inf
            cand_i[:] = -1
            for j in range(tile):
                v = row[j] + sq_tile[j] if bf16 else row[j]
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
                        _insert(best_d[i], best_i[i], _exact(queries[i], bank[3][order[j]]), order[j])
                        count += 1
        cut = _cut(best_d[i, k - 1], e2[i])
        if bf16:  # a threshold per row, rounded so that it only keeps more: cut - |q^|^2 - |b^|^2 + c |q^| |b^|
            base = cut - shift[i]
            slack = abs(base) * 1e-6 + e1[i] + 1e-12 * shift[i] + 1e-30  # e1: the float32 sum's rounding
            s32 = np.float32(min(base + slack, 3e38))
            w32 = np.float32(coefficient * q_norm[i] * (1 + 1e-6))
            for j in range(tile):
                mask[j] = row[j] <= s32 + w32 * norm_tile[j] - sq_tile[j]
        else:
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
def _lower(value, i, jj, query_side, bank):
    """The lower bound on the squared distance of query ``i`` and tile position ``jj`` from their product
    ``value``, in float64: float32 product, L - e1; bfloat16, |q^|^2 + |b^|^2 - 2 q^ . b^ less c |q^| |b^| (and
    float64's part)."""
    shift, e1, q_norm, coefficient = query_side[4], query_side[5], query_side[7], query_side[8]
    if coefficient >= 0:
        total = shift[i] + bank[5][jj]
        return total + np.float64(value) - coefficient * q_norm[i] * bank[6][jj] - 1e-12 * total - 1e-30
    return np.float64(value) + shift[i] - e1[i]


@njit(nogil=True, cache=True)
def _lower_all(products, query_side, bank):  # pragma: no cover - compiled by numba
    """:func:`_lower` of every (query, tile position) pair of a product over the whole bank (the tests)."""
    out = np.empty(products.shape, np.float64)
    widened = np.empty(products.shape[1], np.uint32)
    for i in range(products.shape[0]):
        row = _widen(products[i], widened)
        for jj in range(products.shape[1]):
            out[i, jj] = _lower(row[jj], i, jj, query_side, bank)
    return out


@njit(inline="always")
def _check(value, pair, query_side, bank, best):
    """Tile position ``jj`` of the bank, kept by the pass for query ``i`` (``pair`` = (i, jj, cut); ``value``
    its product): its bound against the current ``cut``, then the cascade, then its exact distance, inserted
    where it belongs. Returns 1 when it computed the exact distance, 0 when the row was dropped before."""
    i, jj, cut = pair
    q_steps, q_suffix, q_rest, queries = query_side[:4]
    bank_steps, bank_suffix, bank_rest, memory, order = bank[:5]
    best_d, best_i = best[:2]
    k = best_d.shape[1]
    lower = _lower(value, i, jj, query_side, bank)
    if lower > cut:
        return 0
    for b in range(k):
        if best_i[i, b] == order[jj]:
            return 0
    rest = np.float64(q_rest[i]) - np.float64(bank_rest[jj])
    partial = max(lower - rest * rest, 0.0)  # a lower bound on the first k coordinates' part
    for s in range(len(q_steps)):
        partial += _step_part(q_steps[s, i], bank_steps[s, jj])
        rest = q_suffix[i, s + 1] - bank_suffix[jj, s + 1]
        if partial + rest * rest > cut:
            return 0
    _insert(best_d[i], best_i[i], _exact(queries[i], memory[order[jj]]), order[jj])
    return 1


def _bf16_error(terms: int) -> float:
    """c such that a bfloat16 product's -2 q^ . b^ (inputs rounded to nearest, products and sums in float32 in
    any order, the output rounded to bfloat16) is within c |q^| |b^| of the float32 vectors' -2 q^ . b^: each
    term is off by at most (1 + u)^2 (1 + g) - 1 of |q_t b_t| (u = 2^-8, g = n 2^-24 / (1 - n 2^-24) for the
    sum of n terms), the output by u of the result, and sum |q_t b_t| <= |q^| |b^|; doubled for the -2, with a
    relative 1e-6 for the float64 that computes it."""
    gamma = terms * UNIT / (1 - terms * UNIT)
    term = (1 + BF16) ** 2 * (1 + gamma) - 1
    return 2.0 * (BF16 + (1 + BF16) * term) * (1 + 1e-6)


_PRECISION: dict[int, str] = {}


def _precision(precision: str, width: int) -> str:
    """``precision`` itself, or for ``auto`` bfloat16 where this CPU's bfloat16 product of one (1024, width) x
    (width, 256) tile is at least 1.4x as fast as float32's (measured once per width in a process: a CPU
    without bfloat16 units emulates it about ten times slower)."""
    if precision in ("float32", "bfloat16"):
        return precision
    if precision != "auto":
        raise ValueError(f"bound search precision {precision!r}: choose float32, bfloat16 or auto")
    if width not in _PRECISION:
        import time

        previous = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            left, right = torch.randn(TILE_QUERIES, width), torch.randn(TILE_ROWS, width)
            seconds = {}
            for dtype in (torch.float32, torch.bfloat16) * 2:  # the first of each a warm-up
                a, b = left.to(dtype), right.to(dtype)
                started = time.perf_counter()
                for _ in range(8):
                    torch.mm(a, b.T)
                seconds[dtype] = time.perf_counter() - started
        finally:
            torch.set_num_threads(previous)
        _PRECISION[width] = "bfloat16" if seconds[torch.float32] >= 1.4 * seconds[torch.bfloat16] else "float32"
    return _PRECISION[width]
