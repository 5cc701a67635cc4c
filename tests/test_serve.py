"""unpaired serve RUN_DIR: the page, POST /translate, bad uploads refused with a clear 4xx while
the server keeps serving; the page used in a real headless browser. Every request goes to
127.0.0.1, with a timeout, and each test stops its server."""
import io
import json
import logging
import os
import re
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from urllib.parse import urlsplit

import pytest
from PIL import Image

from browser import Browser, find_chromium
from helpers import REPO, mean_level_difference
from unpaired import Translator
from unpaired.cli import main
from unpaired.inference.serve import Limits, make_server

TIMEOUT = 60


@contextmanager
def serving(run, **limits):
    """A server in this process at a free port (its URL); stopped, its threads joined, on exit."""
    server = make_server(run, port=0, limits=Limits(**limits), device="cpu", precision="fp32")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.url
    finally:
        server.shutdown()
        thread.join(TIMEOUT)
        assert server.stop(grace=TIMEOUT), "a request was still being answered, or a thread did not end"


def request(url, data=None):
    """(status, content type, body) of one request."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=data), timeout=TIMEOUT) as answer:
            return answer.status, answer.headers["Content-Type"], answer.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], exc.read()


def png_bytes(image):
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


@pytest.mark.slow
def test_post_translate_answers_the_png_and_bad_uploads_a_clear_4xx(kept_run):
    source = Image.open(sorted((kept_run.parent / "data" / "testA").iterdir())[0]).convert("RGB")
    upload = png_bytes(source)
    bomb = png_bytes(Image.new("1", (4000, 4000)))  # 2 KB of PNG, 16 million pixels
    with serving(kept_run, upload_bytes=200_000, pixels=1_000_000) as url:
        assert url.startswith("http://127.0.0.1:")
        status, kind, body = request(url)
        assert status == 200 and kind.startswith("text/html") and b"Translate an image" in body
        info = json.loads(request(url + "info")[2])
        assert info["directions"] == ["a2b", "b2a"] and info["steps"] == [2, 4] and info["latest_step"] == 4

        for query, step in (("direction=a2b", None), ("direction=a2b&step=2", 2), ("direction=b2a", None)):
            status, kind, body = request(f"{url}translate?{query}", upload)
            assert (status, kind) == (200, "image/png"), body
            direction = "b2a" if "b2a" in query else "a2b"
            expected = Translator.from_checkpoint(kept_run, direction=direction, step=step, precision="fp32")(source)
            assert mean_level_difference(Image.open(io.BytesIO(body)), expected) == 0

        refused = [
            (b"hello, not an image", "direction=a2b", 415, "not an image"),
            (upload[: len(upload) // 2], "direction=a2b", 415, "upload"),  # a truncated PNG
            (b"x" * 300_000, "direction=a2b", 413, "limit of 0.2 MB"),
            (bomb, "direction=a2b", 413, "16.0 million pixels"),
            (upload, "direction=sideways", 400, "translates a2b and b2a"),
            (upload, "direction=a2b&step=3", 400, "keeps steps 2, 4"),
            (upload, "step=two", 400, "not a step number"),
            (upload, "step=%C2%B2", 400, "not a step number"),  # "²": str.isdigit says yes, int() no
            (upload, "step=%D9%A3", 400, "not a step number"),  # an Arabic-Indic 3
            (upload, "step=" + "1" * 5000, 400, "not a step number"),  # past int()'s 4300 digits
        ]
        for data, query, code, message in refused:
            status, kind, body = request(f"{url}translate?{query}", data)
            assert status == code and message in body.decode(), (query, status, body[:300])
        assert request(url + "nowhere")[0] == 404
        # still serving
        status, kind, body = request(f"{url}translate?direction=a2b", upload)
        assert status == 200 and Image.open(io.BytesIO(body)).size == source.size


def test_serve_refuses_a_bad_run_or_port(tmp_path, kept_run, capsys):
    assert main(["serve", str(tmp_path / "nowhere"), "--port", "0"]) == 2
    assert "nowhere" in capsys.readouterr().err
    assert main(["serve", str(kept_run), "--port", "70000"]) == 2
    assert "70000 is not a TCP port" in capsys.readouterr().err


@contextmanager
def serve_command(run, *args, ignore_sigint=False):
    """``unpaired serve RUN --port 0 ARGS`` as a process: (process, its first line, its URL);
    killed on exit if it still runs."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    ignore = (lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if ignore_sigint else None
    process = subprocess.Popen([sys.executable, "-m", "unpaired", "serve", str(run), "--port", "0", "--device", "cpu",
                                *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=env, cwd=REPO, preexec_fn=ignore)
    try:
        ready, _, _ = select.select([process.stdout], [], [], TIMEOUT)
        assert ready, "no line from unpaired serve"
        line = process.stdout.readline()
        assert "on http://127.0.0.1:" in line, (line, process.stderr.read() if process.poll() is not None else "")
        yield process, line, re.search(r"http://127\.0\.0\.1:\d+/", line).group(0)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(TIMEOUT)
        process.stdout.close()
        process.stderr.close()


def ended(process):
    """(exit code, stdout, stderr) of a process told to stop."""
    try:
        out, err = process.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        _, err = process.communicate(timeout=TIMEOUT)
        raise AssertionError(f"unpaired serve still ran {TIMEOUT} s after it was told to stop; its stderr:\n"
                             f"{err[-3000:]}") from None
    return process.returncode, out, err


@pytest.mark.slow
def test_the_command_prints_its_url_and_stops_on_ctrl_c(kept_run):
    # started as a script's background job is (SIGINT ignored, inherited): Ctrl-C must still stop it
    with serve_command(kept_run, ignore_sigint=True) as (process, line, url):
        assert json.loads(request(url + "info")[2])["latest_step"] == 4
        process.send_signal(signal.SIGINT)
        code, out, err = ended(process)
        assert code == 0, err[-3000:]


def post_slowly(url, data, first, started):
    """POST ``data`` in two parts: the headers and ``first`` bytes, then (once ``started`` is set)
    the rest. (status, body) of the answer."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), TIMEOUT) as sock:
        sock.sendall(f"POST /translate?direction=a2b HTTP/1.1\r\nHost: x\r\nContent-Length: {len(data)}\r\n"
                     "\r\n".encode() + data[:first])
        started.wait(TIMEOUT)
        sock.sendall(data[first:])
        answer = b""
        while chunk := sock.recv(1 << 16):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_stop_while_a_post_is_in_flight_answers_it_and_exits_cleanly(finished_run, sig):
    """The signal comes while the upload is half sent: the server takes no new request, reads
    the rest, translates it, answers, then exits 0 (it used to exit while a thread was inside
    torch: 'terminate called without an active exception', exit 134, the client reset)."""
    upload = png_bytes(Image.new("RGB", (160, 120), (90, 140, 60)))  # milliseconds of work, well within the grace
    with serve_command(finished_run) as (process, line, url):
        sent, answer = threading.Event(), {}
        client = threading.Thread(target=lambda: answer.update(result=post_slowly(url, upload, 100, sent)))
        client.start()
        time.sleep(1.0)  # the server is reading the body
        process.send_signal(sig)
        time.sleep(0.5)
        sent.set()
        client.join(TIMEOUT)
        code, out, err = ended(process)
    assert "terminate called" not in err and "Traceback" not in err, err[-3000:]
    assert code == 0, (code, out, err[-3000:])
    status, body = answer["result"]
    assert status == 200 and Image.open(io.BytesIO(body)).size == (160, 120)
    assert "stopped" in out


@pytest.mark.slow
def test_ctrl_c_again_abandons_the_translation_in_progress(finished_run):
    upload = png_bytes(Image.new("RGB", (1600, 1600), (90, 140, 60)))  # in 16-px tiles: a minute of work
    with serve_command(finished_run, "--tile", 16) as (process, line, url):
        answer = {}
        client = threading.Thread(target=lambda: answer.update(result=request(f"{url}translate?direction=a2b", upload)))
        client.start()
        time.sleep(1.5)  # translating
        process.send_signal(signal.SIGINT)
        time.sleep(0.5)
        process.send_signal(signal.SIGINT)
        code, out, err = ended(process)
        client.join(TIMEOUT)
    assert "terminate called" not in err and "Traceback" not in err, err[-3000:]
    assert code == 130, (code, out, err[-3000:])
    status, kind, body = answer["result"]
    assert status == 503 and b"abandoned" in body
    assert "abandoned" in out


@pytest.mark.slow
def test_a_run_folder_holding_markup_is_served_and_printed_as_it_is(finished_run, tmp_path):
    run = tmp_path / "mk[red]out" / "mk[" / "]run2"  # the path holds [red] and [/]
    shutil.copytree(finished_run, run)
    with serve_command(run) as (process, line, url):
        assert f"serving {run} (" in line, line
        assert request(url)[0] == 200
        process.send_signal(signal.SIGTERM)
        code, out, err = ended(process)
    assert code == 0 and "Traceback" not in err, err[-3000:]


@pytest.mark.parametrize("flag, value", [("--max-upload-mb", "nan"), ("--max-megapixels", "inf"),
                                         ("--max-megapixels", "-5"), ("--max-upload-mb", "0"), ("--tile", "-3"),
                                         ("--tile", "2.5")])
def test_bad_numbers_are_refused_before_anything_loads(tmp_path, flag, value, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["serve", str(tmp_path / "nowhere"), flag, value])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and f"{flag}: " in err and value in err, err
    assert "nowhere" not in err.splitlines()[-1]  # refused before the run is looked for


def test_a_tile_the_generator_cannot_use_is_refused_at_start(finished_run, capsys):
    assert main(["serve", str(finished_run), "--port", "0", "--tile", "6"]) == 2
    assert "--tile: 6 must be a multiple of 4" in capsys.readouterr().err


def raw_request(url, data, linger=False):
    """Send raw bytes to the server and close without reading the answer; ``linger``: close with
    a reset (RST), as a client that crashed or was killed does."""
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port), TIMEOUT)
    sock.sendall(data)
    if linger:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def test_clients_that_go_away_print_no_traceback_and_the_server_goes_on(finished_run, capsys, caplog):
    upload = png_bytes(Image.new("RGB", (64, 48), (90, 140, 60)))
    post = "POST /translate?direction=a2b HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n"
    caplog.set_level(logging.INFO, logger="unpaired")
    with serving(finished_run) as url:
        raw_request(url, post.format(1000000000000).encode() + b"x" * 1000, linger=True)  # 1 TB announced
        raw_request(url, post.format(1000000000000).encode() + b"x" * 1000)
        raw_request(url, post.format(len(upload)).encode() + upload, linger=True)  # gone before the answer
        raw_request(url, post.format(1000).encode() + b"x" * 10)  # the body ends early
        raw_request(url, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", linger=True)
        raw_request(url, b"POST /translate HTTP/1.1\r\nContent-Length: \xb2\r\n\r\n", linger=True)
        raw_request(url, b"POST /transl", linger=True)  # cut in the request line
        status, kind, body = request(f"{url}translate?direction=a2b", upload)
        assert status == 200 and Image.open(io.BytesIO(body)).size == (64, 48)
        parts = urlsplit(url)
        with socket.create_connection((parts.hostname, parts.port), TIMEOUT) as sock:  # "²" as a length
            sock.sendall(b"POST /translate HTTP/1.1\r\nContent-Length: \xb2\r\n\r\n")
            assert sock.recv(1 << 16).startswith(b"HTTP/1.0 411")
    err = capsys.readouterr().err
    assert "Traceback" not in err and "Exception occurred" not in err, err
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info], caplog.text


@pytest.mark.slow
@pytest.mark.skipif(find_chromium() is None, reason="Chromium is not installed (apt-get install chromium)")
def test_the_page_translates_an_uploaded_image_in_a_browser(kept_run, tmp_path):
    source = tmp_path / "forest.png"
    Image.open(sorted((kept_run.parent / "data" / "testA").iterdir())[0]).save(source)
    with serving(kept_run) as url, Browser() as browser:
        page = browser.open(url)
        page.wait_until("document.getElementById('direction').options.length === 2")
        assert page.evaluate("document.getElementById('step').options.length") == 2  # steps 2 and 4
        page.set_files("#file", [source])
        page.wait_until("document.getElementById('output').complete && "
                        "document.getElementById('output').naturalWidth > 0")
        sizes = page.evaluate("['input', 'output'].map(id => [document.getElementById(id).naturalWidth, "
                              "document.getElementById(id).naturalHeight])")
        assert sizes == [list(Image.open(source).size)] * 2
        boxes = page.evaluate("['input', 'output'].map(id => document.getElementById(id).getBoundingClientRect().left)")
        assert boxes[1] > boxes[0]  # side by side
        link = page.evaluate("[document.getElementById('download').href, document.getElementById('download').download,"
                             " document.getElementById('download').hidden]")
        assert link[0].startswith("blob:") and link[1] == "forest_a2b_step4.png" and link[2] is False
        # another step: the page asks again and shows that step's translation
        page.evaluate("(() => { const s = document.getElementById('step'); s.value = '2'; "
                      "s.dispatchEvent(new Event('change')); })()")
        page.wait_until("document.getElementById('download').download === 'forest_a2b_step2.png' && "
                        "!document.getElementById('download').hidden")
        assert page.errors() == []
