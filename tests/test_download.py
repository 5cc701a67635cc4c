"""Downloading data sets from a local HTTP server: resume, verification, hostile archives."""
from __future__ import annotations

import argparse
import io
import re
import stat
import threading
import uuid
import zipfile
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from unpaired.data import download
from unpaired.cli.data import add_data_commands
from unpaired.data.download import (DATASETS, MIRROR_ENV, dataset_url, download_dataset, list_datasets,
                               unsafe_member_reason)
from unpaired.errors import UnpairedError


# --- a local server ------------------------------------------------------------------------

@dataclass
class ServerState:
    files: dict[str, bytes] = field(default_factory=dict)
    requests: list[tuple[str, str | None]] = field(default_factory=list)
    cuts: list[int] = field(default_factory=list)  # the next responses stop after this many bytes
    honour_range: bool = True


class RangeHandler(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - the http.server API
        state: ServerState = self.server.state
        wanted = self.headers.get("Range")
        state.requests.append((self.path, wanted))
        data = state.files.get(self.path)
        if data is None:
            self.send_error(404, "no such file")
            return
        start = 0
        match = re.fullmatch(r"bytes=(\d+)-", wanted or "")
        if match and state.honour_range:
            start = int(match.group(1))
            if start >= len(data):
                self.send_error(416, "range not satisfiable")
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Type", "application/zip")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if state.cuts:
            body = body[: state.cuts.pop(0)]
            self.close_connection = True
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), RangeHandler)
    httpd.state = ServerState()
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    httpd.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(autouse=True)
def no_waiting(monkeypatch):
    monkeypatch.setattr(download, "RETRY_DELAY_S", 0.0)
    monkeypatch.delenv(MIRROR_ENV, raising=False)


# --- archives ------------------------------------------------------------------------------

def _png(seed: int) -> bytes:
    noise = np.random.default_rng(seed).integers(0, 255, (32, 32, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(noise).save(buf, "PNG")
    return buf.getvalue()


GOOD_FILES = {
    f"{split}/{i}.png": _png(n)
    for n, (split, i) in enumerate((s, i) for s in ("trainA", "trainB", "testA", "testB") for i in range(2))
}


def _zip(members: dict[str, bytes], top: str = "horse2zebra", extra: list[zipfile.ZipInfo] = ()) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        for folder in sorted({rel.split("/")[0] for rel in members}):
            archive.writestr(f"{top}/{folder}/", b"")
        for rel, data in members.items():
            archive.writestr(f"{top}/{rel}", data)
        for info in extra:
            archive.writestr(info, b"payload")
    return buf.getvalue()


GOOD_ZIP = _zip(GOOD_FILES)


def _assert_extracted(target: Path) -> None:
    for rel, data in GOOD_FILES.items():
        assert (target / rel).read_bytes() == data, rel
    assert sorted(p.name for p in target.iterdir()) == ["testA", "testB", "trainA", "trainB"]


def _serve(server, data: bytes, name: str = "horse2zebra") -> str:
    server.state.files[f"/sets/{name}.zip"] = data
    return f"{server.base}/sets/{name}.zip"


# --- tests ---------------------------------------------------------------------------------

def test_known_datasets_and_urls(monkeypatch):
    assert {"horse2zebra", "monet2photo", "summer2winter_yosemite", "apple2orange", "vangogh2photo",
            "cezanne2photo", "ukiyoe2photo", "iphone2dslr_flower", "maps", "facades"} <= set(DATASETS)
    assert dataset_url("horse2zebra") == "http://efrosgans.eecs.berkeley.edu/cyclegan/datasets/horse2zebra.zip"
    monkeypatch.setenv(MIRROR_ENV, "https://mirror.example/cyclegan/")
    assert dataset_url("maps") == "https://mirror.example/cyclegan/maps.zip"
    assert dataset_url("maps", url="http://x/y.zip") == "http://x/y.zip"


def test_good_download_through_mirror(server, tmp_path, monkeypatch):
    _serve(server, GOOD_ZIP)
    monkeypatch.setenv(MIRROR_ENV, f"{server.base}/sets")
    root = tmp_path / "data"
    target = download_dataset("horse2zebra", root=root, progress=False)
    assert target == root / "horse2zebra"
    _assert_extracted(target)
    assert list(root.iterdir()) == [target]  # no .part file, no temporary folder
    assert server.state.requests == [("/sets/horse2zebra.zip", None)]

    again = download_dataset("horse2zebra", root=root, progress=False)
    assert again == target and len(server.state.requests) == 1  # present: nothing downloaded
    assert [(e.name, e.present) for e in list_datasets(root) if e.name in ("horse2zebra", "maps")] == [
        ("horse2zebra", True), ("maps", False)]


def test_dropped_connection_is_resumed_with_range(server, tmp_path):
    url = _serve(server, GOOD_ZIP)
    server.state.cuts = [1000]
    target = download_dataset("horse2zebra", root=tmp_path, url=url, progress=False)
    _assert_extracted(target)
    assert server.state.requests == [("/sets/horse2zebra.zip", None), ("/sets/horse2zebra.zip", "bytes=1000-")]


def test_partial_file_from_an_earlier_run_is_resumed(server, tmp_path):
    url = _serve(server, GOOD_ZIP)
    (tmp_path / ".horse2zebra.zip.part").write_bytes(GOOD_ZIP[:700])
    _assert_extracted(download_dataset("horse2zebra", root=tmp_path, url=url, progress=False))
    assert server.state.requests == [("/sets/horse2zebra.zip", "bytes=700-")]


def test_server_ignoring_range_restarts_from_scratch(server, tmp_path):
    url = _serve(server, GOOD_ZIP)
    server.state.honour_range = False
    (tmp_path / ".horse2zebra.zip.part").write_bytes(b"stale bytes that are not a prefix" * 20)
    _assert_extracted(download_dataset("horse2zebra", root=tmp_path, url=url, progress=False))
    assert server.state.requests[0][1] is not None  # it asked to resume, got 200, started over


def test_failed_download_keeps_part_for_next_run(server, tmp_path, monkeypatch):
    url = _serve(server, GOOD_ZIP)
    server.state.cuts = [500, 0, 0]
    with pytest.raises(UnpairedError, match=r"failed after 3 tries.*500 bytes are kept.*run the same command"):
        download.fetch(url, tmp_path / "x.part", progress=False, retries=2)
    assert (tmp_path / "x.part").read_bytes() == GOOD_ZIP[:500]
    download.fetch(url, tmp_path / "x.part", progress=False)
    assert (tmp_path / "x.part").read_bytes() == GOOD_ZIP
    assert server.state.requests[-1][1] == "bytes=500-"


def test_a_failed_download_that_received_nothing_names_no_partial_file(server, tmp_path):
    url = _serve(server, GOOD_ZIP)
    server.state.cuts = [0, 0, 0]
    with pytest.raises(UnpairedError, match=r"failed after 3 tries.*nothing was received \(no partial file is kept\)"):
        download.fetch(url, tmp_path / "x.part", progress=False, retries=2)
    assert not (tmp_path / "x.part").exists()


def test_missing_file_on_server(server, tmp_path):
    with pytest.raises(UnpairedError, match=r"/sets/horse2zebra.zip failed: HTTP 404"):
        download_dataset("horse2zebra", root=tmp_path, url=f"{server.base}/sets/horse2zebra.zip", progress=False)
    assert list(tmp_path.iterdir()) == []


def _corrupt(data: bytes) -> bytes:
    """Flip a byte inside the first PNG member's compressed data (so its CRC fails)."""
    start = data.index(b"horse2zebra/testA/0.png", 40) + len("horse2zebra/testA/0.png") + 50
    return data[:start] + bytes([data[start] ^ 0xFF]) + data[start + 1:]


@pytest.mark.parametrize("payload, message", [
    (_corrupt(GOOD_ZIP), "corrupted"),
    (b"<html>Service unavailable</html>", "corrupted"),
    (_zip({"images/1.png": _png(1)}), "no trainA and trainB"),
])
def test_bad_archives_are_refused_and_deleted(server, tmp_path, payload, message):
    url = _serve(server, payload)
    with pytest.raises(UnpairedError, match=message) as err:
        download_dataset("horse2zebra", root=tmp_path, url=url, progress=False)
    assert ".horse2zebra.zip.part was deleted" in str(err.value)
    assert list(tmp_path.iterdir()) == []


def _member(name: str, mode: int | None = None) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    if mode is not None:
        info.create_system = 3
        info.external_attr = mode << 16
    return info


EVIL_ABSOLUTE = f"/tmp/unpaired-evil-{uuid.uuid4().hex}"


@pytest.mark.parametrize("member, reason", [
    (_member("horse2zebra/../../evil.txt"), "'..' component"),
    (_member("../evil.txt"), "'..' component"),
    (_member(EVIL_ABSOLUTE), "absolute path"),
    (_member("C:/evil.txt"), "drive letter"),
    (_member("horse2zebra/trainA/link.png", stat.S_IFLNK | 0o777), "symbolic link"),
    (_member("horse2zebra/trainA/fifo", stat.S_IFIFO | 0o644), "special file"),
])
def test_hostile_archives_are_refused_whole(server, tmp_path, member, reason):
    payload = _zip(GOOD_FILES, extra=[member])
    assert member.filename in zipfile.ZipFile(io.BytesIO(payload)).namelist()  # really in the archive
    root = tmp_path / "deep" / "data"
    with pytest.raises(UnpairedError, match=re.escape(f"member {member.filename!r}")) as err:
        download_dataset("horse2zebra", root=root, url=_serve(server, payload), progress=False)
    assert reason in str(err.value) and "nothing was extracted" in str(err.value)
    assert list(root.iterdir()) == []  # no data set, no temporary folder, no archive
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["data", "deep"]
    assert not Path(EVIL_ABSOLUTE).exists()


def test_unsafe_member_reason_accepts_normal_members():
    assert unsafe_member_reason(_member("horse2zebra/trainA/1.png", stat.S_IFREG | 0o644)) is None
    assert unsafe_member_reason(_member("horse2zebra/trainA/", stat.S_IFDIR | 0o755)) is None
    assert unsafe_member_reason(_member("horse2zebra/trainA/1..png")) is None
    assert "'..'" in unsafe_member_reason(_member("a\\..\\..\\evil.txt"))


def test_unknown_name_lists_known_sets(tmp_path):
    with pytest.raises(UnpairedError, match=r"unknown data set 'horse2zebr'\. Did you mean horse2zebra\?") as err:
        download_dataset("horse2zebr", root=tmp_path, progress=False)
    assert all(name in str(err.value) for name in DATASETS)
    with pytest.raises(UnpairedError, match="plain folder name"):
        download_dataset("../up", root=tmp_path, url="http://127.0.0.1:9/x.zip", progress=False)


def test_incomplete_existing_folder_is_not_overwritten(tmp_path):
    (tmp_path / "horse2zebra" / "trainA").mkdir(parents=True)
    with pytest.raises(UnpairedError, match="horse2zebra exists but has no trainA and trainB"):
        download_dataset("horse2zebra", root=tmp_path, progress=False)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="unpaired")
    add_data_commands(parser.add_subparsers(dest="command"))
    return parser


def test_cli_download_and_list(server, tmp_path, capsys):
    url = _serve(server, GOOD_ZIP, name="custom")
    args = _parser().parse_args(["data", "download", "apple2orange", "--root", str(tmp_path), "--url", url])
    assert args.func(args) == 0  # with the progress bar on
    _assert_extracted(tmp_path / "apple2orange")
    assert "apple2orange is ready" in capsys.readouterr().err

    args = _parser().parse_args(["data", "list", "--root", str(tmp_path)])
    assert args.func(args) == 0
    rows = {line.split()[0]: line.split()[2] for line in capsys.readouterr().out.splitlines()
            if line.split() and line.split()[0] in DATASETS}
    assert rows["apple2orange"] == "yes" and rows["horse2zebra"] == "-" and set(rows) == set(DATASETS)

    args = _parser().parse_args(["data", "download", "nosuchset", "--root", str(tmp_path)])
    with pytest.raises(UnpairedError, match="unknown data set 'nosuchset'"):
        args.func(args)
