"""Downloads against a local HTTP server on 127.0.0.1 (never the internet), and safe extraction."""

import hashlib
import io
import json
import os
import tarfile

import pytest
from http_fixture import FileServer

from tailedcore.data.download import ChecksumError, DownloadError, download, extract

PAYLOAD = os.urandom(3 * (1 << 20) + 12345)  # a few MiB so the transfer spans many chunks
SHA = hashlib.sha256(PAYLOAD).hexdigest()


def test_complete_download(tmp_path):
    with FileServer({"/a.tar": PAYLOAD}) as server:
        path = download([f"{server.url}/a.tar"], tmp_path / "a.tar", SHA)
    assert path.read_bytes() == PAYLOAD
    assert not (tmp_path / "a.tar.part").exists()


def test_cut_off_download_is_resumed_with_a_range_request(tmp_path):
    with FileServer({"/a.tar": PAYLOAD}, cut_once={"/a.tar"}) as server:
        download([f"{server.url}/a.tar"], tmp_path / "a.tar", SHA, timeout=10)
        ranges = [r for _, r in server.requests]
    assert (tmp_path / "a.tar").read_bytes() == PAYLOAD
    assert ranges[0] is None and ranges[1] is not None and int(ranges[1][6:-1]) > 0


def test_checksum_mismatch_leaves_nothing_behind(tmp_path):
    with FileServer({"/a.tar": PAYLOAD}) as server:
        with pytest.raises(ChecksumError, match="does not match the expected"):
            download([f"{server.url}/a.tar"], tmp_path / "a.tar", "0" * 64)
    assert not (tmp_path / "a.tar").exists() and not (tmp_path / "a.tar.part").exists()


def test_dead_mirror_then_working_mirror(tmp_path):
    with FileServer({"/good/a.tar": PAYLOAD}) as server:
        download([f"{server.url}/gone/a.tar", f"{server.url}/good/a.tar"], tmp_path / "a.tar", SHA)
        assert server.requests[0][0] == "/gone/a.tar"
    assert (tmp_path / "a.tar").read_bytes() == PAYLOAD


def test_all_mirrors_dead_says_where_to_put_the_archive(tmp_path):
    with FileServer({}) as server:
        with pytest.raises(DownloadError) as err:
            download([f"{server.url}/gone/a.tar"], tmp_path / "a.tar", SHA, size_hint="4.9 GB")
    message = str(err.value)
    assert "/gone/a.tar" in message and "a.tar (4.9 GB)" in message
    assert str((tmp_path / "a.tar").resolve()) in message and "`archive`" in message


def test_an_existing_archive_is_verified_not_downloaded(tmp_path):
    (tmp_path / "a.tar").write_bytes(PAYLOAD)
    assert download([], tmp_path / "a.tar", SHA) == tmp_path / "a.tar"
    (tmp_path / "b.tar").write_bytes(PAYLOAD[:-1])
    with pytest.raises(ChecksumError):
        download([], tmp_path / "b.tar", SHA)


def _tar(path, members):
    with tarfile.open(path, "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def test_extraction_refuses_path_escapes(tmp_path):
    _tar(tmp_path / "evil.tar", {"../escaped.txt": b"x"})
    with pytest.raises(tarfile.FilterError):
        extract(tmp_path / "evil.tar", tmp_path / "out", tmp_path / "out.ready.json")
    assert not (tmp_path / "escaped.txt").exists() and not (tmp_path / "out.ready.json").exists()


def test_extraction_writes_the_marker_last_and_redoes_a_half_extraction(tmp_path):
    _tar(tmp_path / "ok.tar", {"cat/train/good/000.png": b"p"})
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "stale.txt").write_text("from an interrupted run")
    record = extract(tmp_path / "ok.tar", tmp_path / "out", tmp_path / "out.ready.json")
    assert not (tmp_path / "out" / "stale.txt").exists()
    assert (tmp_path / "out" / "cat" / "train" / "good" / "000.png").read_bytes() == b"p"
    assert json.loads((tmp_path / "out.ready.json").read_text()) == record and record["members"] >= 1


def test_a_single_top_folder_becomes_the_dataset_root(tmp_path):
    _tar(tmp_path / "wrapped.tar", {"mvtec/cat/train/good/000.png": b"p"})
    record = extract(tmp_path / "wrapped.tar", tmp_path / "out", tmp_path / "out.ready.json")
    assert record["root"] == str((tmp_path / "out" / "mvtec").resolve())
