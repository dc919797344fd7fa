"""Exact greedy k-center on the CPU whose work shrinks as the coreset grows (numba, all threads): the clustered
kernel. The default CPU kernel is :mod:`tailedcore.samplers.deferred`, which shares this module's distance,
bound, margins and tree; this one stays as the full update (``prune=False``, the reference every selection is
checked against) and as the bench's previous kernel.

The selection is the farthest-first rule: start at ``start``, then repeatedly the point farthest from its
nearest chosen centre, first index on ties; distances are float32 squared distances. Every point belongs to
the cluster of its nearest centre so far. A cluster's members lie in one segment of a pool, sorted by their
distance to the centre (largest first, first index on ties), so the segment's head is the cluster's radius;
a tournament tree over the radii gives the next centre in O(log M). When centre ``c`` is added, a member
``i`` of cluster ``j`` can only move to ``c`` if ``|c - c_j| < 2 |i - c_j|`` (triangle inequality), so:

* a cluster whose centre lies at least twice its radius away from ``c`` is skipped whole; the test first
  uses a lower bound on ``|c - c_j|`` from a few orthonormal directions (the leading principal directions
  of a sample: m = 32 numbers per point instead of d), and only clusters that pass it get the exact
  float32 centre distance;
* inside a cluster that can lose points, only the head of the sorted segment can move (members farther
  from ``c_j`` than half of ``|c - c_j|``); the scan stops at the first member that cannot;
* before a member's exact distance to ``c`` is computed, the same lower bound on ``|i - c|`` must leave
  room for an improvement.

Every skip carries a safety margin (0.1 % on the exact centre test as before, 0.2 % and an absolute term for
the float32 rounding of the bound coordinates), so float rounding can never skip a point that would have
moved: the selection equals the full update computed by this same kernel with every skip off
(``prune=False``), index for index (tests and ``bench/run.py`` check it). Per iteration the work is the
heads of the few clusters near ``c`` and an m-number test per earlier centre, instead of P point visits
and a d-number distance to every earlier centre.

Over 300 lines: the kernel, its cluster pool, the tournament tree and the bound are one algorithm with one
set of invariants (sorted segments, radius at the head, margins); split up, they could drift apart.

The member test compares the partial squared distance with an upper bound on its cut, so it needs no square
root; and since a cluster's segment lies anywhere in the pool, the scan asks the CPU to fetch the head of the
cluster two candidates ahead while it works on this one (on 300k real patch features at 10 % the segments
are a few members long, and each new segment used to start with a cache miss).
"""

from __future__ import annotations

import time
from typing import NamedTuple

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.core import cgutils
from numba.extending import intrinsic

from ..runtime.logs import ProgressLog

SHRINK = np.float32(0.25 / (1.0 + 1e-3))  # |c - c_j|^2 / 4 with the exact test's margin
BOUND_SHRINK = np.float32(0.25 / (1.0 + 2e-3))  # the same for the lower bound
BOUND_GROW = np.float32(1.0 + 2e-3)  # a member is skipped when its bound exceeds nearest by this factor
EMPTY_INDEX = np.int64(2**62)  # the index of an empty tree slot: loses every tie
AHEAD, LINES = 2, 6  # step 2 prefetches the head (6 rows) of the cluster 2 candidates ahead
BOUND_DIM = 32  # directions of the lower bound (measured: 16 and 48 are slower on real patch features)


class GreedyState(NamedTuple):
    """The kernel's arrays, by name (numba compiles a NamedTuple of arrays like a tuple)."""

    nearest: np.ndarray  # (P,) float32: each point's distance to its nearest centre so far
    pool: np.ndarray  # (P + room,) int64: the points, cluster by cluster, each segment sorted (-1: a hole)
    pool_near: np.ndarray  # (P + room,) float32: nearest of the pool's points, in pool order
    seg_start: np.ndarray  # (M,) int64: where each cluster's segment starts in the pool
    seg_len: np.ndarray  # (M,) int64: its length
    tree_val: np.ndarray  # (2S,) float32: the tournament tree over cluster radii (values)
    tree_idx: np.ndarray  # (2S,) int64: ... and the point of each (ties: first index)
    selected: np.ndarray  # (M,) int64: the centres, in selection order
    quarter: np.ndarray  # (M,) float32: |c - c_j|^2 / 4 (with margin) of the clusters that can lose points
    cand_buf: np.ndarray  # (M,) int64: those clusters
    cand_count: np.ndarray  # (chunks,) int64: how many each chunk found
    mover_buf: np.ndarray  # (P,) int64: the points that move to the new centre
    mover_start: np.ndarray  # (M,) int64: where each candidate's movers start in mover_buf
    mover_count: np.ndarray  # (M,) int64: how many moved
    scratch: np.ndarray  # (P,) int64: the compaction's copy
    work: np.ndarray  # (M,) int64: distances computed per candidate
    slack: np.ndarray  # (1,) float32: the bound's rounding slack
    centre_rot: np.ndarray  # (M, 32) float32: the centres' bound coordinates
    centre_pts: np.ndarray  # (M, d) float32: the centres
    threshold: np.ndarray  # (M,) float32: bound distance beyond which a new centre takes none of a cluster
    pool_rot: np.ndarray  # (P + room, 32) float32: the bound coordinates in pool order


@njit(fastmath=True, inline="always")
def _sqdist(a, b):
    total = np.float32(0.0)
    for j in range(a.shape[0]):
        diff = a[j] - b[j]
        total += diff * diff
    return total


@njit(fastmath=True, inline="always")
def _may_improve(rows_a, a, rows_b, b, margins):
    """False only when the bound coordinates ``rows_a[a]`` and ``rows_b[b]`` of two points prove |x - y|^2 >=
    ``nearest`` (with BOUND_GROW's margin): the partial distance S against (sqrt(n) + slack)^2, n = nearest *
    BOUND_GROW, without a square root, through the upper bound n + slack (n + 1) + slack^2 (2 sqrt(n) <= n + 1),
    so it keeps every member the rounded bound (sqrt(S) - slack)^2 < n keeps, and a few more. ``margins`` =
    (slack, nearest)."""
    slack, nearest = margins
    total = np.float32(0.0)
    for t in range(rows_a.shape[1]):
        diff = rows_a[a, t] - rows_b[b, t]
        total += diff * diff
    grown = nearest * BOUND_GROW
    return total < grown + slack * (grown + np.float32(1.0)) + slack * slack


@intrinsic
def _prefetch(typingctx, array, index):
    """Ask the CPU to fetch ``array[index]`` (1-d) into its caches; changes nothing (llvm.prefetch)."""

    def codegen(context, builder, signature, args):
        kind = signature.args[0]
        data = context.make_array(kind)(context, builder, args[0])
        pointer = cgutils.get_item_pointer(context, builder, kind, data, [args[1]], wraparound=False)
        byte_pointer = ir.IntType(8).as_pointer()
        int32 = ir.IntType(32)
        function = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [byte_pointer, int32, int32, int32]), "llvm.prefetch.p0i8"
        )  # read, keep in every cache level, data
        builder.call(
            function,
            [
                builder.bitcast(pointer, byte_pointer),
                ir.Constant(int32, 0),
                ir.Constant(int32, 3),
                ir.Constant(int32, 1),
            ],
        )
        return context.get_dummy_value()

    return types.void(array, index), codegen


@njit(inline="always")
def _better(value_a, index_a, value_b, index_b):
    return value_a > value_b or (value_a == value_b and index_a < index_b)


@njit(cache=True)
def _tree_set(tree_val, tree_idx, slot, value, index):  # pragma: no cover - compiled by numba
    """Set leaf ``slot`` of the tournament tree and replay the matches above it."""
    node = len(tree_val) // 2 + slot
    tree_val[node] = value
    tree_idx[node] = index
    node //= 2
    while node >= 1:
        left, right = 2 * node, 2 * node + 1
        if _better(tree_val[right], tree_idx[right], tree_val[left], tree_idx[left]):
            tree_val[node], tree_idx[node] = tree_val[right], tree_idx[right]
        else:
            tree_val[node], tree_idx[node] = tree_val[left], tree_idx[left]
        node //= 2


@njit(cache=True)
def _sort_segment(pool, pool_near, lo, hi):  # pragma: no cover - compiled by numba
    """Sort pool[lo:hi] by distance, largest first, then by index (the head is the cluster's radius)."""
    members = np.sort(pool[lo:hi])
    values = pool_near[lo:hi].copy()
    order = np.argsort(pool[lo:hi])
    values = values[order]
    by_value = np.argsort(-values, kind="mergesort")  # stable: equal distances keep the index order
    pool[lo:hi] = members[by_value]
    pool_near[lo:hi] = values[by_value]


@njit(parallel=True, fastmath=True, cache=True)
def _first_centre(points, start, nearest, num_chunks):  # pragma: no cover - compiled by numba
    """Distances of every point to the first centre (the full update of iteration 0)."""
    num = len(points)
    centre = points[start].copy()
    step = (num + num_chunks - 1) // num_chunks
    for chunk in prange(num_chunks):
        for i in range(chunk * step, min(num, chunk * step + step)):
            nearest[i] = _sqdist(points[i], centre)


@njit(parallel=True, fastmath=True, cache=True)
def _steps(points, rot, state, arrays, options):  # pragma: no cover - compiled by numba
    """Iterations ``options = (prune, k_begin, k_end, num_chunks)``: each takes the tree's winner as centre k
    and moves to it the members of the clusters it wins. ``state = (end of the used pool, distances computed)``."""
    nearest, pool, pool_near, seg_start = arrays.nearest, arrays.pool, arrays.pool_near, arrays.seg_start
    seg_len, tree_idx, selected = arrays.seg_len, arrays.tree_idx, arrays.selected
    quarter, cand_buf, cand_count, mover_buf = arrays.quarter, arrays.cand_buf, arrays.cand_count, arrays.mover_buf
    mover_start, mover_count, scratch, work = arrays.mover_start, arrays.mover_count, arrays.scratch, arrays.work
    prune, num_chunks = options[0] != 0, options[3]
    slack = arrays.slack[0]
    centre_rot, centre_pts = arrays.centre_rot, arrays.centre_pts
    threshold, pool_rot = arrays.threshold, arrays.pool_rot
    for k in range(options[1], options[2]):
        chosen = tree_idx[1]
        selected[k] = chosen
        centre = points[chosen].copy()
        for t in range(points.shape[1]):
            centre_pts[k, t] = centre[t]
        for t in range(rot.shape[1]):
            centre_rot[k, t] = rot[chosen, t]
        threshold[k] = -1.0  # empty until step 3
        # 1. clusters that can lose points to the new centre, gathered per chunk of earlier centres
        step = (k + num_chunks - 1) // num_chunks
        for chunk in prange(num_chunks):
            found = 0
            first = chunk * step
            for j in range(first, min(k, first + step)):
                if seg_len[j] == 0:
                    continue
                if prune:
                    bound = np.float32(0.0)
                    for t in range(centre_rot.shape[1]):
                        gap = centre_rot[k, t] - centre_rot[j, t]
                        bound += gap * gap
                    if bound >= threshold[j]:  # far enough: no member can move
                        continue
                    radius = pool_near[seg_start[j]]
                    q = _sqdist(centre_pts[j], centre) * SHRINK
                    if q >= radius:
                        continue
                    quarter[j] = q
                else:
                    quarter[j] = np.float32(-1.0)
                cand_buf[first + found] = j
                found += 1
            cand_count[chunk] = found
        num_cand = 0
        for chunk_s in range(num_chunks):  # compact the per-chunk lists (centres stay in index order)
            for f in range(cand_count[chunk_s]):
                cand_buf[num_cand] = cand_buf[chunk_s * step + f]
                num_cand += 1
        # room for the movers of each candidate: its whole segment at most
        total = 0
        for c in range(num_cand):
            mover_start[c] = total
            total += seg_len[cand_buf[c]]
        # 2. per losing cluster: scan the head of its segment, move what moves, keep the rest sorted
        flat_rot = pool_rot.reshape(-1)
        width = pool_rot.shape[1]
        for ci in prange(num_cand):
            if ci + AHEAD < num_cand:  # the segments lie far apart in the pool: fetch a later one's head now
                ahead = seg_start[cand_buf[ci + AHEAD]]
                for line in range(min(seg_len[cand_buf[ci + AHEAD]], LINES) * width // 16):
                    _prefetch(flat_rot, ahead * width + 16 * line)
                _prefetch(pool_near, ahead)
                _prefetch(pool, ahead)
            jj = cand_buf[ci]
            lo = seg_start[jj]
            hi = lo + seg_len[jj]
            limit = quarter[jj]
            out = mover_start[ci]
            count = 0
            m = lo
            while m < hi and pool_near[m] > limit:
                member = pool[m]
                if not prune or _may_improve(pool_rot, m, centre_rot, k, (slack, pool_near[m])):
                    count += 1
                    distance = _sqdist(points[member], centre)
                    if distance < pool_near[m]:
                        nearest[member] = distance
                        mover_buf[out] = member
                        out += 1
                        pool[m] = -1
                m += 1
            # the stayers of the scanned head, right-aligned against the unscanned rest: still sorted (only
            # the part up to the last mover shifts)
            while m > lo and pool[m - 1] >= 0:
                m -= 1
            write = m
            for r in range(m - 1, lo - 1, -1):
                if pool[r] >= 0:
                    write -= 1
                    pool[write] = pool[r]
                    pool_near[write] = pool_near[r]
                    for t in range(pool_rot.shape[1]):
                        pool_rot[write, t] = pool_rot[r, t]
            seg_start[jj] = write
            seg_len[jj] = hi - write
            mover_count[ci] = out - mover_start[ci]
            work[ci] = count
        # 3. the new cluster at the end of the pool (compacted first when full), sorted
        movers = 0
        for c in range(num_cand):
            movers += mover_count[c]
            state[1] += work[c]
        if state[0] + movers > len(pool):
            used = 0
            for j in range(k):
                scratch[used : used + seg_len[j]] = pool[seg_start[j] : seg_start[j] + seg_len[j]]
                seg_start[j] = used
                used += seg_len[j]
            pool[:used] = scratch[:used]
            for u in range(used):
                pool_near[u] = nearest[pool[u]]
                for t in range(rot.shape[1]):
                    pool_rot[u, t] = rot[pool[u], t]
            state[0] = used
        seg_start[k] = state[0]
        for c in range(num_cand):
            for f in range(mover_count[c]):
                member = mover_buf[mover_start[c] + f]
                pool[state[0]] = member
                pool_near[state[0]] = nearest[member]
                state[0] += 1
        seg_len[k] = movers
        _sort_segment(pool, pool_near, seg_start[k], seg_start[k] + movers)
        for u in range(seg_start[k], seg_start[k] + movers):
            for t in range(rot.shape[1]):
                pool_rot[u, t] = rot[pool[u], t]
        for c in range(num_cand):
            if mover_count[c]:  # a cluster that lost nothing keeps its radius
                _set_radius(arrays, cand_buf[c], slack)
        _set_radius(arrays, k, slack)


@njit(cache=True)
def _set_radius(arrays, j, slack):  # pragma: no cover - compiled by numba
    """Cluster j's radius into the tree, and the squared bound distance beyond which a new centre can take
    none of its members: (sqrt(radius / BOUND_SHRINK) + slack)^2 (-1 when empty or of radius 0: always)."""
    pool, pool_near, seg_start, seg_len = arrays.pool, arrays.pool_near, arrays.seg_start, arrays.seg_len
    tree_val, tree_idx, threshold = arrays.tree_val, arrays.tree_idx, arrays.threshold
    if seg_len[j] == 0:
        _tree_set(tree_val, tree_idx, j, np.float32(-1.0), EMPTY_INDEX)
        threshold[j] = -1.0
        return
    radius = pool_near[seg_start[j]]
    _tree_set(tree_val, tree_idx, j, radius, pool[seg_start[j]])
    threshold[j] = (np.sqrt(radius / BOUND_SHRINK) + slack) ** 2 if radius > 0 else -1.0


def bound_coordinates(points: np.ndarray, dim: int = BOUND_DIM) -> tuple[np.ndarray, float]:
    """(P, m) float32 coordinates along m orthonormal directions, and the slack that covers their rounding.

    The directions are the leading principal directions of a fixed sample of ``points`` (any orthonormal
    set keeps the bound valid; these make it tight). Coordinates are computed in float64 and rounded once
    to float32: each is off by at most 2^-24 |x|, so the distance between two points' coordinates is off by
    at most 2 sqrt(m) 2^-24 max|x|; the slack is 16 times that."""
    num, d = points.shape
    dim = min(dim, d, max(num, 1))  # fewer points than directions: the SVD has only as many
    sample = points[np.random.default_rng(0).choice(num, size=min(num, 20000), replace=False)].astype(np.float64)
    sample -= sample.mean(axis=0)
    _, _, vt = np.linalg.svd(sample, full_matrices=False)
    basis = np.ascontiguousarray(vt[:dim].T)
    out = np.empty((num, dim), np.float32)
    for start in range(0, num, 65536):
        out[start : start + 65536] = points[start : start + 65536].astype(np.float64) @ basis
    norm = float(np.sqrt((points.astype(np.float64) ** 2).sum(axis=1).max())) if num else 0.0
    return out, 16 * 2 * np.sqrt(dim) * 2.0**-24 * norm


def greedy_clusters(points: np.ndarray, num_select: int, start: int, prune: bool = True, progress: str = ""):
    """(selected indices, distances computed) of the exact greedy; ``progress`` names it in the log."""
    import numba

    num = len(points)
    num_chunks = max(1, 4 * numba.get_num_threads())
    rot, slack = bound_coordinates(points)
    nearest = np.empty(num, np.float32)
    _first_centre(points, start, nearest, num_chunks)
    room = max(num // 2, 4096)  # appended movers: the pool is compacted when full (amortised O(1) per move)
    pool = np.concatenate([np.arange(num, dtype=np.int64), np.empty(room, np.int64)])
    pool_near = np.concatenate([nearest, np.empty(room, np.float32)])
    _sort_segment(pool, pool_near, 0, num)
    size = 1 << max(0, int(num_select - 1).bit_length())
    arrays = GreedyState(
        nearest=nearest,
        pool=pool,
        pool_near=pool_near,
        seg_start=np.zeros(num_select, np.int64),
        seg_len=np.zeros(num_select, np.int64),
        tree_val=np.full(2 * size, -1.0, np.float32),
        tree_idx=np.full(2 * size, EMPTY_INDEX, np.int64),
        selected=np.empty(num_select, np.int64),
        quarter=np.empty(num_select, np.float32),
        cand_buf=np.empty(num_select, np.int64),
        cand_count=np.zeros(num_chunks, np.int64),
        mover_buf=np.empty(num, np.int64),
        mover_start=np.zeros(num_select, np.int64),
        mover_count=np.zeros(num_select, np.int64),
        scratch=np.empty(num, np.int64),
        work=np.zeros(num_select, np.int64),
        slack=np.array([slack], np.float32),  # the bound's rounding slack
        centre_rot=np.empty((num_select, rot.shape[1]), np.float32),
        centre_pts=np.empty((num_select, points.shape[1]), np.float32),
        threshold=np.full(num_select, -1.0, np.float32),
        pool_rot=np.empty((num + room, rot.shape[1]), np.float32),
    )
    arrays.seg_len[0] = num
    arrays.selected[0] = start
    arrays.centre_rot[0], arrays.centre_pts[0] = rot[start], points[start]
    arrays.pool_rot[:num] = rot[pool[:num]]
    _set_radius(arrays, 0, np.float32(slack))
    state = np.array([num, num], np.int64)  # end of the used pool, distances computed
    run_in_batches(
        num_select,
        progress,
        lambda done, stop: _steps(points, rot, state, arrays, np.array([int(prune), done, stop, num_chunks], np.int64)),
    )
    return arrays.selected, int(state[1])


def run_in_batches(num_select: int, progress: str, run) -> None:
    """``run(done, stop)`` over the selections 1 .. num_select - 1 in batches of 0.5 to 2 s each (16 to 65,536
    selections), the progress logged after each; ``progress`` names the selection in the log."""
    progress_log = ProgressLog(progress or "greedy coreset", num_select)
    done, batch = 1, 64
    while done < num_select:
        stop = min(num_select, done + batch)
        began = time.perf_counter()
        run(done, stop)
        took = time.perf_counter() - began
        batch = int(np.clip(batch * (2.0 if took < 0.5 else 0.5 if took > 2.0 else 1.0), 16, 65536))
        done = stop
        progress_log.update(done)
