"""Checksummed downloads with resume and mirrors, and safe archive extraction.

A download goes to ``<target>.part`` (resumed with an HTTP Range request when it exists), is checked
against its sha256 and only then moved into place atomically. An archive the user already has is
verified the same way and never downloaded again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import sys
import tarfile
import time
import urllib.error
import urllib.request
from pathlib import Path

log = logging.getLogger(__name__)
CHUNK = 1 << 20


class DownloadError(RuntimeError):
    """No mirror delivered the file; the message names the URLs tried and where to put a manual download."""


class ChecksumError(RuntimeError):
    """A file's sha256 does not match the config."""


def sha256sum(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def verify(path: str | Path, expected: str | None) -> None:
    if not expected:
        return
    actual = sha256sum(path)
    if actual != expected.lower():
        raise ChecksumError(
            f"{path}: sha256 {actual} does not match the expected {expected}; the file is corrupt or "
            "not the dataset the config names. Delete it and download again."
        )


def _fetch(url: str, part: Path, timeout: float, progress_every: float) -> None:
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        if have and response.status != 206:  # the server ignored the Range header: start over
            have = 0
        total = response.headers.get("Content-Length")
        total = int(total) + have if total is not None else None
        bar = _progress(total, have, url)
        with open(part, "ab" if have else "wb") as out:
            last = time.monotonic()
            for block in iter(lambda: response.read(CHUNK), b""):
                out.write(block)
                have += len(block)
                periodic = time.monotonic() - last >= progress_every
                bar(have, force=periodic)
                if periodic:
                    last = time.monotonic()
        bar(have, force=True)
        if total is not None and have < total:
            raise urllib.error.URLError(f"connection closed after {have} of {total} bytes")


def _progress(total: int | None, start: int, url: str):
    """tqdm on a terminal, periodic log lines otherwise (rule logs)."""
    if sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(total=total, initial=start, unit="B", unit_scale=True, desc=Path(url).name)

        def update(done: int, force: bool) -> None:
            bar.update(done - bar.n)

        return update

    def report(done: int, force: bool) -> None:
        if force:
            share = f" ({100 * done / total:.1f} %)" if total else ""
            log.info("downloaded %d bytes%s of %s", done, share, url)

    return report


def _try_mirror(
    url: str, part: Path, errors: list[str], *, retries: int, timeout: float, progress_every: float
) -> bool:
    """True when ``part`` holds the complete body of ``url``; failures are appended to ``errors``."""
    for attempt in range(retries):
        try:
            _fetch(url, part, timeout, progress_every)
            return True
        except (urllib.error.URLError, OSError, TimeoutError) as err:
            errors.append(f"{url} (try {attempt + 1}): {err}")
            log.warning("download failed: %s", errors[-1])
            if isinstance(err, urllib.error.HTTPError) and err.code in (403, 404, 410):
                break  # a dead link stays dead: go to the next mirror
    part.unlink(missing_ok=True)  # a partial body of one mirror must not be resumed from another
    return False


def download(
    urls: list[str],
    target: str | Path,
    sha256: str | None,
    size_hint: str = "",
    timeout: float = 60.0,
    retries: int = 3,
    progress_every: float = 30.0,
) -> Path:
    """Download ``target`` from the first mirror that works; resume interrupted transfers."""
    target = Path(target)
    if target.exists():
        verify(target, sha256)
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    errors = []
    for url in urls:
        if not _try_mirror(url, part, errors, retries=retries, timeout=timeout, progress_every=progress_every):
            continue
        try:
            verify(part, sha256)
        except ChecksumError:
            part.unlink(missing_ok=True)
            raise
        os.replace(part, target)
        return target
    raise DownloadError(
        "could not download "
        + target.name
        + (f" ({size_hint})" if size_hint else "")
        + ". Tried:\n  "
        + "\n  ".join(errors or ["no URL configured"])
        + f"\nDownload it by hand and put it at {target.resolve()} (or set the dataset's `archive` in the config "
        "to its path); its sha256 is checked either way."
    )


def extract(archive: str | Path, destination: str | Path, marker: str | Path, sha256: str | None = None) -> dict:
    """Extract a tar archive safely (tarfile's 'data' filter: no path escapes, no devices, no links out).

    The marker, written last, records what was extracted; without it an extraction counts as unfinished
    and is redone from scratch.
    """
    archive, destination, marker = Path(archive), Path(destination), Path(marker)
    if destination.exists():
        shutil.rmtree(destination)
    staging = destination.with_name(destination.name + ".extracting")
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    with tarfile.open(archive) as tar:
        members = tar.getmembers()
        tar.extractall(staging, filter="data")
    os.replace(staging, destination)
    entries = list(destination.iterdir())
    # an archive that wraps everything in one top folder: the dataset root is that folder
    root = entries[0] if len(entries) == 1 and entries[0].is_dir() else destination
    record = {
        "archive": str(archive.resolve()),
        "sha256": sha256 or sha256sum(archive),
        "members": len(members),
        "root": str(root.resolve()),
    }
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps(record, indent=2))
    return record
