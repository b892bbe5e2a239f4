"""The app as a browser meets it: `rdrft app` on a free local port, driven by Debian's headless
Chromium (through Playwright). Shared by the end-to-end test and ``benchmarks/app_speed.py``."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request

from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

CHROMIUM = "/usr/bin/chromium"
# Debian's Chromium as root needs --no-sandbox; the other flags stop it calling home, which this
# machine's closed network refuses (and which would only slow it down).
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]


class ServerError(RuntimeError):
    """The app's server exited or did not answer in time; the message says which."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(model: str, port: int, timeout: float) -> subprocess.Popen:
    """Starts `rdrft app --model MODEL --port PORT` and returns once it answers its health check."""
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "rare_disease_rft", "app", "--model", model, "--port", str(port)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    while True:
        if process.poll() is not None:
            raise ServerError(f"rdrft app exited with {process.returncode}: {process.stdout.read().decode()[-2000:]}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=1).read()
            return process
        except OSError:
            if time.perf_counter() - started > timeout:
                stop_server(process)
                raise ServerError(f"rdrft app did not answer /_stcore/health within {timeout:.0f} s") from None
            time.sleep(0.05)


def stop_server(process: subprocess.Popen) -> None:
    process.terminate()  # rdrft app replaced itself with the server: this stops it
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:  # once seen under heavy load: the server ignored SIGTERM
        process.kill()
        process.wait()


def wait_until_idle(page, timeout_ms: int = 30_000) -> None:
    """Until the script run the last action started has finished and redrawn the page: Streamlit's
    'running' widget is gone and no element is left faded as stale."""
    page.wait_for_selector('[data-testid="stStatusWidget"]', state="detached", timeout=timeout_ms)
    page.wait_for_function("() => !document.querySelector('[data-stale=\"true\"]')", timeout=timeout_ms)


class ScriptRuns:
    """The script runs the server has reported finished to a page, read off its websocket (Streamlit's
    ``script_finished`` message), so that a wait ends on the run an action started, however fast it
    is. (The page's own signs of a run, the 'running' widget and faded elements, may not show at all
    for a short one.)"""

    def __init__(self, page) -> None:
        self.finished = 0
        page.on("websocket", lambda socket: socket.on("framereceived", self._read))

    def _read(self, payload: bytes | str) -> None:
        if isinstance(payload, bytes) and ForwardMsg.FromString(payload).WhichOneof("type") == "script_finished":
            self.finished += 1

    def wait_for(self, page, count: int, timeout_ms: int = 30_000) -> None:
        """Until ``count`` runs have finished, then until the page has drawn the last of them."""
        deadline = time.perf_counter() + timeout_ms / 1000
        while self.finished < count:
            if time.perf_counter() > deadline:
                raise TimeoutError(f"{count - self.finished} script runs did not finish within {timeout_ms} ms")
            page.wait_for_timeout(5)  # Playwright reads the websocket's frames while it waits
        wait_until_idle(page, timeout_ms)
