"""``unpaired serve RUN_DIR``: a local web page that translates the images dropped on it.

    GET  /                                the page (unpaired/inference/serve_page.py)
    GET  /info                            the run: name, objective, directions, kept steps (JSON)
    POST /translate?direction=a2b&step=N  the image file as the body -> the translation (PNG)

The server is the standard library's ``http.server``: no dependency to install or keep up
to date, and enough for one person's browser and scripts on this machine. It is a
ThreadingHTTPServer, so the page and /info answer while a translation runs; translations
take one lock, one at a time (on the CPU one already uses every core). It binds 127.0.0.1
unless told otherwise. Uploads are checked before any pixel is decoded: a body over the
upload limit gets 413, an image of more pixels than the limit (a decompression bomb: a
small file that decodes to gigabytes) 413, a body that is not an image 415, a bad
direction or step 400, each with a message saying why; the server keeps serving, also when a
client goes away mid-request (one log line, no traceback). Large images are translated in
tiles, as ``unpaired translate`` does, through the same Translator.

Stopping (:func:`serve_until_stopped`, the command's Ctrl-C or SIGTERM): no new connection is
taken, a translation in progress is finished and answered for up to ``STOP_GRACE`` seconds
(a second signal cuts that short), then abandoned at its next layer (the client gets 503);
every connection is closed and every handler thread joined before the process exits.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

import contextlib
import io
import json
import logging
import os
import re
import signal
import socket
import sys
import threading
import time
import warnings
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from urllib.parse import parse_qs, urlsplit

from PIL import Image, UnidentifiedImageError

from ..store import checkpoint
from ..data.images import decode_image
from ..errors import UnpairedError
from .serve_page import PAGE
from .tiling import large_images
from .translate import Translator

if TYPE_CHECKING:
    from torch import nn

log = logging.getLogger("unpaired")
CACHED_TRANSLATORS = 2  # (direction, step) pairs kept loaded
STOP_GRACE = 10.0  # seconds a stop waits for a translation in progress (docker stop waits 10 s)
JOIN_TIMEOUT = 10.0  # seconds a stop then waits for the handler threads to end
DIGITS = re.compile(r"[0-9]{1,18}")  # a number in a request: ASCII digits only (str.isdigit takes "²")


@dataclass
class Limits:
    upload_bytes: int = 50 * 2**20
    pixels: int = 64_000_000


class HttpError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def abandoned() -> HttpError:
    return HttpError(503, "the server is stopping: this translation was abandoned")


class App:
    """What the server serves: a run's generators, loaded on first use and kept for the
    next request (the last ``CACHED_TRANSLATORS`` direction and step pairs)."""

    def __init__(self, run: str | os.PathLike, limits: Limits | None = None, device: str = "auto",
                 precision: str = "auto", tile: int | None = None, plugins: Iterable[str | os.PathLike] = (),
                 raw: bool = False) -> None:
        from ..engine.restore import open_checkpoint

        self.run = Path(run)
        self.limits = limits or Limits()
        self.options: dict[str, Any] = {"device": device, "precision": precision, "tile": tile, "raw": raw}
        state, path, cfg = open_checkpoint(self.run, plugins=plugins, raw=raw)  # a bad run: an error before serving
        self.name = self.run.name if self.run.is_dir() else path.name
        self.objective = state.get("objective", "?")
        self.directions = list(state["translators"])
        self.lock = threading.Lock()
        self.stopping = False  # set by Server.stop: no new request is taken
        self.cancelled = False  # set by Server.stop: a translation in progress stops at its next layer
        self.translators = OrderedDict()
        first = self._ready(Translator.from_checkpoint(state, direction=self.directions[0], source=path,
                                                       **self.options))
        if tile and (tile % first.multiple or tile < 4 * first.multiple):  # refused now, not per request
            raise UnpairedError(f"--tile: {tile!r} must be a multiple of {first.multiple} and at least "
                                f"{4 * first.multiple} pixels")
        self.translators[(self.directions[0], self._version(None))] = first  # the common request, ready
        self.device = first.device

    def _ready(self, translator: Translator) -> Translator:
        """``translator`` with a check before every layer of its generator: once cancelled, the
        translation in progress ends at its next layer (no tiling code needs to know)."""
        def check(module: nn.Module, args: tuple[Any, ...]) -> None:
            if self.cancelled:
                raise abandoned()
        for module in translator.generator.modules():
            module.register_forward_pre_hook(check)
        return translator

    def describe(self) -> str:
        return f"{self.run} ({self.objective}, {' and '.join(self.directions)}, on {self.device})"

    def latest_step(self) -> int | None:
        return checkpoint.peek_step(checkpoint.resolve(self.run))

    def steps(self) -> list[int]:
        """The steps a request may name: the kept ones and the latest."""
        kept = set(checkpoint.kept_steps(self.run / "checkpoints")) if self.run.is_dir() else set()
        latest = self.latest_step()
        return sorted(kept | ({latest} if latest is not None else set()))

    def info(self) -> dict[str, object]:
        return {"run": self.name, "objective": self.objective, "directions": self.directions, "steps": self.steps(),
                "latest_step": self.latest_step(), "max_upload_bytes": self.limits.upload_bytes,
                "max_pixels": self.limits.pixels}

    def _version(self, step: int | None) -> int | tuple[str, int, int]:
        """What identifies the weights of ``step`` (None: latest.pt, which training may replace)."""
        if step is not None:
            return step
        path = checkpoint.resolve(self.run)
        stat = path.stat()
        return ("latest", stat.st_mtime_ns, stat.st_size)

    def translator(self, direction: str, step: int | None) -> Translator:
        if direction not in self.directions:
            raise HttpError(400, f"direction {direction!r}: this run ({self.objective}) translates "
                                 f"{' and '.join(self.directions)}")
        try:
            key = (direction, self._version(step))
            if key not in self.translators:
                self.translators[key] = self._ready(Translator.from_checkpoint(self.run, direction=direction,
                                                                               step=step, **self.options))
                while len(self.translators) > CACHED_TRANSLATORS:
                    self.translators.popitem(last=False)
        except UnpairedError as exc:  # e.g. a step that is not kept: the message lists the kept ones
            raise HttpError(400, str(exc)) from None
        self.translators.move_to_end(key)
        return self.translators[key]

    def check_size(self, data: bytes) -> tuple[int, int]:
        """(width, height) of an upload, read from its header; 413 for more pixels than the
        limit, 415 for what is not an image. Nothing is decoded yet."""
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # the limit below decides
                with Image.open(io.BytesIO(data)) as probe:
                    width, height = probe.size
        except Image.DecompressionBombError as exc:
            raise HttpError(413, f"the image is refused as a possible decompression bomb ({exc})") from None
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
            raise HttpError(415, "the upload is not an image Pillow can read (send the image file itself: "
                                 "PNG, JPEG, WebP, BMP, TIFF ...)") from None
        if width * height > self.limits.pixels:
            raise HttpError(413, f"the image is {width} x {height} = {width * height / 1e6:.1f} million pixels, more "
                                 f"than this server's limit of {self.limits.pixels / 1e6:.1f} million (a guard "
                                 "against decompression bombs; unpaired serve --max-megapixels raises it)")
        return width, height

    def translate(self, data: bytes, direction: str = "a2b", step: int | None = None) -> bytes:
        """An upload's translation as PNG bytes (raises HttpError)."""
        with self.lock, large_images():  # one at a time; PIL's own pixel limit is ours while inside
            self.check_size(data)
            translator = self.translator(direction, step)
            try:
                image = decode_image(data, translator.in_channels)
            except UnpairedError as exc:
                raise HttpError(415, str(exc)) from None
            out = translator(image)
        buf = io.BytesIO()
        out.save(buf, format="PNG")
        return buf.getvalue()


class Handler(BaseHTTPRequestHandler):
    server_version = "unpaired-serve"
    timeout = 120  # seconds a client may take to send its request

    @property
    def app(self) -> App:
        return cast(Server, self.server).app

    def log_message(self, format: str, *args: Any) -> None:
        log.info("%s %s", self.address_string(), format % args)

    def send(self, status: int, body: str | bytes, content_type: str = "text/plain; charset=utf-8",
             headers: Iterable[tuple[str, str]] = ()) -> None:
        if isinstance(body, str):
            body = body.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        with cast(Server, self.server).working():
            if path in ("/", "/index.html"):
                self.send(200, PAGE, "text/html; charset=utf-8")
            elif path == "/info":
                self.send(200, json.dumps(self.app.info()), "application/json")
            else:
                self.send(404, f"no page {path}: the page is /, the API POST /translate?direction=a2b\n")

    def do_POST(self) -> None:
        parts = urlsplit(self.path)
        with cast(Server, self.server).working():
            if parts.path != "/translate":
                self.send(404, f"no endpoint {parts.path}: POST the image to /translate?direction=a2b\n")
                return
            answer: tuple  # send()'s arguments: (status, body[, content type, headers])
            try:
                if self.app.stopping:  # a request begun before the stop is answered; a later one not
                    raise HttpError(503, "the server is stopping; send the image again once it runs")
                direction, step = self.query(parts.query)
                data = self.body()
                started = time.perf_counter()
                png = self.app.translate(data, direction, step)
                answer = (200, png, "image/png", [("X-Translate-Seconds", f"{time.perf_counter() - started:.3f}")])
            except HttpError as exc:
                answer = (exc.status, str(exc) + "\n")
            except (ConnectionError, TimeoutError):
                raise  # the client went away: Server.handle_error says so in one line
            except Exception as exc:  # noqa: BLE001 - one request fails, the server goes on
                log.exception("translate failed")
                answer = (500, f"translation failed: {type(exc).__name__}: {exc}\n")
            self.send(*answer)

    def query(self, text: str) -> tuple[str, int | None]:
        query = parse_qs(text)
        direction = query.get("direction", ["a2b"])[-1]
        step = query.get("step", [""])[-1]
        if step and not DIGITS.fullmatch(step):
            raise HttpError(400, f"step {step[:40]!r} is not a step number (digits 0-9)")
        return direction, int(step) if step else None

    def body(self) -> bytes:
        """The request body, at most the upload limit (411 without a length, 413 above it, 400
        when it ends before the length it announced)."""
        announced = (self.headers.get("Content-Length") or "").strip()
        if not DIGITS.fullmatch(announced):
            raise HttpError(411, "send the image as the request body with a Content-Length "
                                 "(curl --data-binary @image.jpg ...)")
        length, limit = int(announced), self.app.limits.upload_bytes
        if length > limit:
            self.discard(length)
            raise HttpError(413, f"the upload is {length / 2**20:.1f} MB, more than this server's limit of "
                                 f"{limit / 2**20:.1f} MB (unpaired serve --max-upload-mb raises it)")
        if length == 0:
            raise HttpError(400, "the request body is empty: send the image file as the body")
        data = self.rfile.read(length)
        if len(data) < length:
            self.close_connection = True
            raise HttpError(400, f"the body ended after {len(data):,} of the {length:,} bytes its Content-Length "
                                 "announced")
        return data

    def discard(self, length: int, most: int = 256 * 2**20) -> None:
        """Read and drop a refused body (a client that is still sending would otherwise see the
        connection reset instead of the answer); a very large one is cut off."""
        left = min(length, most)
        while left > 0:
            chunk = self.rfile.read(min(left, 1 << 20))
            if not chunk:
                break
            left -= len(chunk)
        self.close_connection = True


class Server(ThreadingHTTPServer):
    """The HTTP server: a thread per connection. It keeps the open connections and their
    threads, so that :meth:`stop` can finish or abandon the requests in progress and join them."""
    daemon_threads = True  # stop() joins them; a thread that will not end never holds up the exit

    def __init__(self, address: tuple[str, int], app: App) -> None:
        host = address[0]
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        super().__init__(address, Handler)
        self.app = app
        self.connections: dict = {}  # socket -> the thread that serves it
        self.busy = 0  # requests being answered (not counting connections waiting for a request)
        self.guard = threading.Lock()

    @property
    def url(self) -> str:
        # an AF_INET or AF_INET6 server's address: the host is a str (typeshed allows bytes for any family)
        host, port = cast("tuple[str, int]", self.server_address[:2])
        return f"http://{f'[{host}]' if ':' in host else host}:{port}/"

    def process_request_thread(self, request: socket.socket | tuple[bytes, socket.socket],
                               client_address: Any) -> None:
        with self.guard:
            self.connections[request] = threading.current_thread()
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self.guard:
                self.connections.pop(request, None)

    @contextlib.contextmanager
    def working(self) -> Iterator[None]:
        """Within: a request is being answered (a stop waits for it)."""
        with self.guard:
            self.busy += 1
        try:
            yield
        finally:
            with self.guard:
                self.busy -= 1

    def handle_error(self, request: socket.socket | tuple[bytes, socket.socket], client_address: Any) -> None:
        """A client that went away (reset, closed, timed out) is one log line; anything else
        the standard library's traceback."""
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)) or (isinstance(exc, OSError) and self.app.stopping):
            log.info("%s: the connection ended before the answer was sent (%s)", client_address[0],
                     type(exc).__name__)
            return
        super().handle_error(request, client_address)

    def stop(self, grace: float = STOP_GRACE, hurry: Callable[[], bool] = lambda: False) -> bool:
        """End serving, once ``serve_forever`` has returned (``shutdown()``): refuse new
        requests, wait up to ``grace`` seconds (or until ``hurry()`` is true) for the
        requests being answered, then abandon those (a translation stops at its next layer),
        close every connection and join every handler thread. True when no request was
        abandoned and every thread ended."""
        self.app.stopping = True
        self.socket.close()  # no new connection
        finished = self._settle(grace, hurry)
        self.app.cancelled = True
        if not finished:
            self._settle(JOIN_TIMEOUT)  # the abandoned translations end at their next layer and answer 503
        with self.guard:
            connections = dict(self.connections)
        for request in connections:  # idle ones and cut-off ones: their reads end now
            try:
                request.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        deadline = time.monotonic() + JOIN_TIMEOUT
        for thread in connections.values():
            thread.join(max(0.0, deadline - time.monotonic()))
        self.server_close()
        return finished and not any(thread.is_alive() for thread in connections.values())

    def _settle(self, seconds: float, hurry: Callable[[], bool] = lambda: False) -> bool:
        """Wait up to ``seconds`` (or until ``hurry()``) for the requests being answered; True when none is left."""
        deadline = time.monotonic() + seconds
        while self.busy and time.monotonic() < deadline and not hurry():
            time.sleep(0.05)
        return not self.busy


def make_server(run: str | os.PathLike, host: str = "127.0.0.1", port: int = 8000, limits: Limits | None = None,
                device: str = "auto", precision: str = "auto", tile: int | None = None,
                plugins: Iterable[str | os.PathLike] = (), raw: bool = False) -> Server:
    """A :class:`Server` for ``run`` bound to ``host:port`` (port 0: a free one; ``server.url``
    says which); call ``serve_forever()``, and ``shutdown()`` from another thread to stop it."""
    if not 0 <= port <= 65535:
        raise UnpairedError(f"--port: {port} is not a TCP port (0-65535; 0 picks a free one)")
    app = App(run, limits, device, precision, tile, plugins, raw)
    try:
        return Server((host, port), app)
    except OSError as exc:
        raise UnpairedError(f"--host {host} --port {port}: cannot listen there ({exc.strerror or exc}); "
                            "choose another port (--port 0 picks a free one)") from None


def serve_until_stopped(server: Server, say: Callable[[str], object] = print, grace: float = STOP_GRACE) -> int:
    """Serve until SIGINT (Ctrl-C) or SIGTERM, then stop cleanly (:meth:`Server.stop`; a second
    signal abandons the translation in progress at once). Call it from the main thread. The
    exit code: 0 when every request was answered, else 128 + the signal (130, 143)."""
    if threading.current_thread() is not threading.main_thread():  # no signals here: until the process ends
        server.serve_forever()
        return 0
    signals = []

    def on_signal(signum: int, frame: FrameType | None) -> None:  # only records it: the main thread below acts on it
        signals.append(signum)

    # Ctrl-C (and SIGTERM) stop it even when it was started with SIGINT ignored (a background job
    # of a script inherits that, and Python leaves an inherited SIG_IGN in place)
    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    thread = threading.Thread(target=server.serve_forever, name="serve", daemon=True)
    try:
        thread.start()
        while not signals:
            time.sleep(0.1)
        server.shutdown()  # serve_forever returns: no new request is taken
        thread.join()
        if server.busy:
            say(f"stopping: finishing the request in progress (at most {grace:.0f} s; Ctrl-C again abandons it)")
        finished = server.stop(grace, hurry=lambda: len(signals) > 1)
    except BaseException:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        raise
    # the handlers stay: a signal from now until the process ends is recorded, never a half-way
    # death by SIGINT (a Ctrl-C pressed twice while the server stops)
    if any(t.is_alive() for t in server.connections.values()):  # a thread still inside torch: exiting
        say("stopped (a translation did not end; leaving it)")  # now skips the C++ teardown it would abort
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(128 + signals[0])
    say("stopped" if finished else "stopped (a request in progress was abandoned)")
    return 0 if finished else 128 + signals[0]
