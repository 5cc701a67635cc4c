"""unpaired serve RUN_DIR: the page, POST /translate, bad uploads refused with a clear 4xx while
the server keeps serving; the page used in a real headless browser. Every request goes to
127.0.0.1, with a timeout, and each test stops its server."""
import io
import json
import os
import re
import select
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from contextlib import contextmanager

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
    server = make_server(run, port=0, limits=Limits(**limits), device="cpu", precision="fp32")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.url
    finally:
        server.shutdown()
        server.server_close()
        thread.join(TIMEOUT)


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


def test_the_command_prints_its_url_and_stops_on_ctrl_c(kept_run):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    # started as a script's background job is (SIGINT ignored, inherited): Ctrl-C must still stop it
    process = subprocess.Popen([sys.executable, "-m", "unpaired", "serve", str(kept_run), "--port", "0",
                                "--device", "cpu"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=env, cwd=REPO, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        ready, _, _ = select.select([process.stdout], [], [], TIMEOUT)
        assert ready, "no line from unpaired serve"
        line = process.stdout.readline()
        assert "on http://127.0.0.1:" in line, (line, process.stderr.read() if process.poll() is not None else "")
        url = re.search(r"http://127\.0\.0\.1:\d+/", line).group(0)
        assert json.loads(request(url + "info")[2])["latest_step"] == 4
        process.send_signal(signal.SIGINT)
        try:
            code = process.wait(TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            _, err = process.communicate(timeout=TIMEOUT)
            raise AssertionError(f"unpaired serve still ran {TIMEOUT} s after Ctrl-C; its stderr:\n{err[-3000:]}")
        assert code == 0, process.stderr.read()[-3000:]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(TIMEOUT)
        process.stdout.close()
        process.stderr.close()


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
