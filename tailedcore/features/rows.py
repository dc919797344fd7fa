"""Patch features read from ``.npy`` files on demand, in blocks, without keeping the files mapped.

A fit at paper scale sees millions of training patches (VisA step: 3.37 M x 1024 float32, 13.8 GB). A memory
map read from end to end keeps every page it touched resident, and those pages count in the job's memory
(RSS) until the map is closed. Here each read maps the file, copies the rows it needs and closes the map, so a
job holds only what it computes with: the projections, the LOF scores, the rows a coreset keeps.

``PatchRows`` stands for the (n, h, w, d) patches of n images, each image a row of one of several files (the
categories of a feature cache, or the tail views a fit spilled to disk). ``PatchRows.reshape(-1, d)`` gives
``FlatRows``, the (n * h * w, d) patch rows that the samplers (``take_rows``, ``random_projection``) read in
chunks. Reads return the file's dtype; the samplers compute in float32.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..runtime.io import load_array

BLOCK_ROWS = 65536  # patch rows copied per mapping: at most 256 MiB of 1024-d float32 resident at a time


class CachedArray:
    """A C-order ``.npy`` file of the workflow, read by first-axis index through a short-lived map."""

    def __init__(self, path: str | Path, what: str = "patch feature cache"):
        mapped = load_array(path, what, mmap=True)  # checks the header: a damaged file names its rebuild command
        self.path, self.shape, self.dtype = Path(path), tuple(mapped.shape), mapped.dtype
        self.offset = int(getattr(mapped, "offset", 0))
        del mapped

    @classmethod
    def raw(cls, path: str | Path, shape: tuple, dtype) -> CachedArray:
        """A headerless file of C-order values (a fit's spilled tail views)."""
        array = cls.__new__(cls)
        array.path, array.shape, array.dtype, array.offset = Path(path), tuple(shape), np.dtype(dtype), 0
        expected = int(np.prod(shape)) * array.dtype.itemsize
        if array.path.stat().st_size != expected:
            raise ValueError(f"{path} holds {array.path.stat().st_size} bytes, not the {expected} of {shape} {dtype}")
        return array

    def __len__(self) -> int:
        return self.shape[0]

    def _map(self, width: int) -> np.ndarray:
        """The file as (rows, width) rows, mapped until the returned array is dropped."""
        rows = int(np.prod(self.shape)) // width
        return np.memmap(self.path, dtype=self.dtype, mode="r", offset=self.offset, shape=(rows, width))

    def take(self, rows: np.ndarray, width: int | None = None) -> np.ndarray:
        """Copy of ``rows`` of the file seen as (-1, ``width``) rows (``width`` None: the file's first axis),
        in the given order; read in sorted blocks, each through its own map."""
        rows = np.asarray(rows, dtype=np.int64)
        inner = self.shape[1:] if width is None else (width,)
        row_size = int(np.prod(inner))
        out = np.empty((len(rows), *inner), dtype=self.dtype)
        if not len(rows):
            return out
        order = np.argsort(rows, kind="stable")  # monotone reads
        per_block = max(1, BLOCK_ROWS * self.shape[-1] // max(row_size, 1))
        for start in range(0, len(rows), per_block):
            picked = order[start : start + per_block]
            mapped = self._map(row_size)
            out[picked] = mapped[rows[picked]].reshape(len(picked), *inner)
            del mapped
        return out


def _shape(shape: tuple, size: int) -> tuple[int, ...]:
    shape = tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else tuple(shape)
    if -1 in shape:
        known = int(np.prod([s for s in shape if s != -1]))
        shape = tuple(size // known if s == -1 else s for s in shape)
    return tuple(int(s) for s in shape)


class PatchRows:
    """(n, h, w, d) patch features of n images, image i being row ``rows[i]`` of ``files[which[i]]``."""

    ndim = 4

    def __init__(self, files: list[CachedArray], which, rows):
        self.files = files
        self.which, self.rows = np.asarray(which, dtype=np.int64), np.asarray(rows, dtype=np.int64)
        grids = {tuple(f.shape[1:]) for f in files}
        if len(grids) != 1 or any(len(f.shape) != 4 for f in files):
            raise ValueError(f"patch files of different shapes: {[f'{f.path}: {f.shape}' for f in files]}")
        self.shape = (len(self.rows), *grids.pop())
        self.dtype = files[0].dtype

    @classmethod
    def of(cls, array: CachedArray) -> PatchRows:
        """Every image of one file of (n, h, w, d) patches."""
        return cls([array], np.zeros(len(array), np.int64), np.arange(len(array)))

    def __len__(self) -> int:
        return self.shape[0]

    @property
    def cells(self) -> int:
        return self.shape[1] * self.shape[2]

    def __getitem__(self, images) -> PatchRows:
        """The images at ``images`` (integer positions, a slice or a boolean mask), still read on demand."""
        picked = np.arange(len(self))[images]
        if np.ndim(picked) != 1:
            raise TypeError("PatchRows selects whole images only; read() first to index further")
        return PatchRows(self.files, self.which[picked], self.rows[picked])

    def reshape(self, *shape):
        shape = _shape(shape, int(np.prod(self.shape)))
        if len(shape) == 2 and shape[1] == self.shape[3]:
            return FlatRows(self)
        return self.read().reshape(shape)

    def patch_rows(self, flat: np.ndarray) -> np.ndarray:
        """Patch rows ``flat`` of the (n * h * w, d) view, in the given order, in the files' dtype."""
        flat = np.asarray(flat, dtype=np.int64)
        image, cell = np.divmod(flat, self.cells)
        out = np.empty((len(flat), self.shape[3]), dtype=self.dtype)
        for number, array in enumerate(self.files):
            hits = np.flatnonzero(self.which[image] == number)
            if len(hits):
                out[hits] = array.take(self.rows[image[hits]] * self.cells + cell[hits], width=self.shape[3])
        return out

    def positions(self, start: int, stop: int) -> np.ndarray:
        """Patch cells ``start:stop`` of the flattened (h * w) grid of every image: (n, stop - start, d)."""
        cells = np.arange(start, stop)
        flat = (np.arange(len(self))[:, None] * self.cells + cells[None, :]).ravel()
        return self.patch_rows(flat).reshape(len(self), len(cells), self.shape[3])

    def read(self) -> np.ndarray:
        """All n images as one (n, h, w, d) array in the files' dtype."""
        out = np.empty(self.shape, dtype=self.dtype)
        for number, array in enumerate(self.files):
            hits = np.flatnonzero(self.which == number)
            if len(hits):
                out[hits] = array.take(self.rows[hits])
        return out

    def __array__(self, dtype=None, copy=None):
        out = self.read()
        return out if dtype is None else out.astype(dtype, copy=False)


class FlatRows:
    """The (n * h * w, d) patch rows of a :class:`PatchRows`, read by index (an integer array or a slice)."""

    ndim = 2

    def __init__(self, patches: PatchRows):
        self.patches = patches
        self.shape = (len(patches) * patches.cells, patches.shape[3])
        self.dtype = patches.dtype

    def __len__(self) -> int:
        return self.shape[0]

    def reshape(self, *shape):
        if _shape(shape, self.shape[0] * self.shape[1]) == self.shape:
            return self
        return np.asarray(self).reshape(_shape(shape, self.shape[0] * self.shape[1]))

    def __getitem__(self, index) -> np.ndarray:
        if isinstance(index, slice):
            index = np.arange(len(self))[index]
        index = np.asarray(index)
        if index.dtype == bool:  # a mask, not the rows 0 and 1
            index = np.flatnonzero(index)
        return self.patches.patch_rows(index)

    def __array__(self, dtype=None, copy=None):
        out = self.patches.read().reshape(self.shape)
        return out if dtype is None else out.astype(dtype, copy=False)


def read_positions(patches, start: int, stop: int) -> np.ndarray:
    """Cells ``start:stop`` of the flattened grid of every image, (n, stop - start, d), from an (n, h, w, d)
    array or a :class:`PatchRows` alike."""
    if isinstance(patches, PatchRows):
        return patches.positions(start, stop)
    num, height, width, dim = patches.shape
    return np.asarray(patches.reshape(num, height * width, dim)[:, start:stop])
