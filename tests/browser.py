"""A headless Chromium driven over the DevTools protocol, standard library only: the browser
reads commands from file descriptor 3 and writes answers and events to 4
(``--remote-debugging-pipe``; messages are JSON ended by a NUL byte). Enough to open a page,
read its console errors, run JavaScript, set a file input and take a screenshot.

    with Browser() as browser:
        page = browser.open("file:///.../report.html")
        assert page.evaluate("document.images.length") > 0 and not page.errors()
"""
from __future__ import annotations

import base64
import fcntl
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time

NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium():
    """The browser's executable, or None (the tests that need one are skipped only then)."""
    return next((path for path in map(shutil.which, NAMES) if path), None)


class BrowserError(RuntimeError):
    pass


class Browser:
    def __init__(self, executable=None, timeout=30.0, window=(1280, 1000)):
        self.executable = executable or find_chromium()
        if self.executable is None:
            raise BrowserError("no Chromium found (apt-get install chromium)")
        self.timeout = timeout
        self.window = window
        self.next_id = 0
        self.answers = {}
        self.events = []
        self.arrived = threading.Condition()
        self.process = None

    # -- the process and the pipe ------------------------------------------------------
    def __enter__(self):
        self.profile = tempfile.mkdtemp(prefix="unpaired-chromium-")
        to_browser_r, to_browser_w = os.pipe()
        from_browser_r, from_browser_w = os.pipe()
        # out of the way of 3 and 4, where the child needs them
        high = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in (to_browser_r, from_browser_w)]
        for fd in (to_browser_r, from_browser_w):
            os.close(fd)

        def remap():  # in the child, before exec
            os.dup2(high[0], 3)
            os.dup2(high[1], 4)

        args = [self.executable, "--headless", "--disable-gpu", "--no-sandbox", "--remote-debugging-pipe",
                f"--user-data-dir={self.profile}", "--no-first-run", "--no-default-browser-check",
                "--disable-extensions", "--disable-background-networking", "--disable-component-update",
                "--disable-dev-shm-usage", f"--window-size={self.window[0]},{self.window[1]}", "about:blank"]
        # close_fds=False: the descriptors remap() makes must survive; Python's own are close-on-exec
        self.process = subprocess.Popen(args, preexec_fn=remap, close_fds=False, stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for fd in high:
            os.close(fd)
        self.write = os.fdopen(to_browser_w, "wb", buffering=0)
        self.read = os.fdopen(from_browser_r, "rb", buffering=0)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self.send("Browser.getVersion")
        return self

    def __exit__(self, *exc):
        try:
            if self.process.poll() is None:
                self.send("Browser.close", timeout=5)
        except Exception:  # noqa: BLE001 - closing anyway
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        for f in (self.write, self.read):
            try:
                f.close()
            except OSError:
                pass
        shutil.rmtree(self.profile, ignore_errors=True)

    def _read(self):
        buffer = b""
        while True:
            try:
                chunk = self.read.read(1 << 16)
            except (OSError, ValueError):
                chunk = b""
            if not chunk:
                with self.arrived:
                    self.closed = True
                    self.arrived.notify_all()
                return
            buffer += chunk
            *messages, buffer = buffer.split(b"\0")
            with self.arrived:
                for raw in messages:
                    message = json.loads(raw)
                    if "id" in message:
                        self.answers[message["id"]] = message
                    else:
                        self.events.append(message)
                self.arrived.notify_all()

    closed = False

    def send(self, method, params=None, session=None, timeout=None):
        """The result of one DevTools command (raises BrowserError on an error answer)."""
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        self.write.write(json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + (timeout or self.timeout)
        with self.arrived:
            while self.next_id not in self.answers:
                left = deadline - time.monotonic()
                if left <= 0 or self.closed:
                    raise BrowserError(f"{method}: no answer from the browser")
                self.arrived.wait(left)
            answer = self.answers.pop(self.next_id)
        if "error" in answer:
            raise BrowserError(f"{method}: {answer['error']}")
        return answer.get("result", {})

    def wait_for(self, predicate, timeout=None, what="an event"):
        """The first event (since the browser started) for which ``predicate`` is true."""
        deadline = time.monotonic() + (timeout or self.timeout)
        with self.arrived:
            while True:
                found = next((e for e in self.events if predicate(e)), None)
                if found is not None:
                    return found
                left = deadline - time.monotonic()
                if left <= 0 or self.closed:
                    raise BrowserError(f"timed out waiting for {what}")
                self.arrived.wait(left)

    def open(self, url):
        """A new tab at ``url``, loaded, with console, exceptions and log entries recorded."""
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        page = Page(self, session)
        for domain in ("Page", "Runtime", "Log", "DOM"):
            self.send(f"{domain}.enable", session=session)
        page.navigate(url)
        return page


class Page:
    def __init__(self, browser, session):
        self.browser, self.session = browser, session

    def send(self, method, params=None, timeout=None):
        return self.browser.send(method, params, self.session, timeout)

    def navigate(self, url):
        seen = len(self.browser.events)
        answer = self.send("Page.navigate", {"url": url})
        if answer.get("errorText"):
            raise BrowserError(f"{url}: {answer['errorText']}")
        self.browser.wait_for(lambda e: e.get("sessionId") == self.session and e["method"] == "Page.loadEventFired"
                              and self.browser.events.index(e) >= seen, what=f"{url} to load")

    def evaluate(self, expression, timeout=None):
        """The value of a JavaScript expression (a promise is awaited)."""
        answer = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                "awaitPromise": True}, timeout)
        if "exceptionDetails" in answer:
            raise BrowserError(f"{expression}: {answer['exceptionDetails']}")
        return answer["result"].get("value")

    def wait_until(self, expression, timeout=30.0):
        """Poll a JavaScript expression until it is true; its value."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise BrowserError(f"timed out waiting until {expression}")
            time.sleep(0.1)

    def set_viewport(self, width, height):
        """Lay the page out at ``width`` x ``height`` CSS pixels (the window itself cannot be made
        narrower than headless Chromium's minimum, 500 px)."""
        self.send("Emulation.setDeviceMetricsOverride", {"width": width, "height": height, "deviceScaleFactor": 1,
                                                         "mobile": False})

    def errors(self):
        """What the page reported as errors: console.error, uncaught exceptions, failed loads."""
        out = []
        for e in self.browser.events:
            if e.get("sessionId") != self.session:
                continue
            p = e.get("params", {})
            if e["method"] == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                out.append("console: " + " ".join(str(a.get("value", a.get("description", ""))) for a in p["args"]))
            elif e["method"] == "Runtime.exceptionThrown":
                out.append("exception: " + json.dumps(p.get("exceptionDetails", {}))[:500])
            elif e["method"] == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
                entry = p["entry"]
                out.append(f"log: {entry.get('text')} {entry.get('url', '')}")
        return out

    def set_files(self, selector, paths):
        """Put files into an <input type=file> (its change event fires, as when a person picks them)."""
        root = self.send("DOM.getDocument", {"depth": 0})["root"]["nodeId"]
        node = self.send("DOM.querySelector", {"nodeId": root, "selector": selector})["nodeId"]
        if not node:
            raise BrowserError(f"no element {selector}")
        self.send("DOM.setFileInputFiles", {"nodeId": node, "files": [str(p) for p in paths]})

    def screenshot(self, path, full_page=True):
        """A PNG of the page (its whole height with ``full_page``)."""
        params = {"format": "png"}
        if full_page:
            metrics = self.send("Page.getLayoutMetrics")
            size = metrics.get("cssContentSize") or metrics["contentSize"]
            params.update(captureBeyondViewport=True, clip={"x": 0, "y": 0, "width": size["width"],
                                                            "height": size["height"], "scale": 1})
        data = self.send("Page.captureScreenshot", params, timeout=60)["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))
        return path
