"""The app's server, as ``rdrft app`` starts it: Streamlit serving ``app/streamlit_app.py`` in this
process, which meanwhile imports what the page needs and loads the knowledge base and the model, so
that the first visitor's page is usable at once and every session shares one copy of each."""

from __future__ import annotations

import gc
import importlib
import os
import sys
import threading
import time
from concurrent import futures
from pathlib import Path

from app import MODEL_ENV, TRUST_REMOTE_CODE_ENV

PAGE = Path(__file__).resolve().parent / "streamlit_app.py"


def serve(model: str, port: int, trust_remote_code: bool) -> None:
    """Serves the page for ``model`` on http://localhost:PORT until the process is stopped."""
    os.environ[MODEL_ENV] = model
    os.environ.pop(TRUST_REMOTE_CODE_ENV, None)
    if trust_remote_code:  # the user's flag, handed to the page's model loading
        os.environ[TRUST_REMOTE_CODE_ENV] = "1"
    # Streamlit sets up a Plotly theme as it is imported, when Plotly is installed (pheval brings it):
    # 0.1-0.2 s of the server's start, for charts the page never draws. (Streamlit is imported here,
    # not with this module, so that only the server's process goes without Plotly.)
    sys.modules.setdefault("plotly", None)
    from streamlit.components.v2.component_manager import BidiComponentManager
    from streamlit.web import cli as streamlit_cli

    # As its runtime starts, Streamlit reads the metadata of every installed distribution in search of
    # custom components (0.6 s of the server's start, with this project's ~250 packages installed);
    # the page uses none.
    BidiComponentManager.discover_and_register_components = lambda manager, **_: None
    threading.Thread(target=_warm_up_once_started, args=(model,), name="rdrft-app-warm-up", daemon=True).start()
    streamlit_cli.main(["run", str(PAGE), "--server.headless", "true", "--server.port", str(port),
                        # this machine only, as the page carries patient data; and no tracebacks in the page
                        "--server.address", "127.0.0.1", "--client.showErrorDetails", "none",
                        "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false",
                        "--client.toolbarMode", "minimal",
                        # no full garbage collection after each script run (Streamlit's default): before the
                        # warm-up has frozen what it loaded (see warm_up), the first page's took 0.2-0.5 s of the
                        # interpreter lock, and its messages waited; Python's own collections still run
                        "--runner.postScriptGC", "false"], prog_name="streamlit", standalone_mode=False)


def _warm_up_once_started(model: str) -> None:
    """:func:`warm_up` once the server has started: before, it would only slow the server's start
    (one interpreter lock); from then on it runs while the browser loads the page's scripts."""
    from streamlit import runtime
    from streamlit.runtime.runtime import RuntimeState

    while not (runtime.exists() and runtime.get_instance().state != RuntimeState.INITIAL):
        time.sleep(0.02)
    warm_up(model)


def warm_up(model: str) -> None:
    """What the page's first run would otherwise wait for: its modules (importing the page imports
    them; its ``main`` runs only when Streamlit runs it), the knowledge base and the model."""
    # imported here, not with this module: the library's modules (numpy, scipy, the HPO) then load
    # while the browser loads the page's scripts, not before the server answers
    from streamlit import delta_generator

    from app.loading import choose_model, knowledge_base, model_loading

    importlib.import_module("app.streamlit_app")
    # Streamlit checks once per process, at the first element a page draws, whether it runs in a
    # REPL; the check reads the whole call stack's source files (0.1-0.3 s of the first page's run)
    delta_generator._maybe_print_use_warning()
    knowledge_base()
    futures.wait([model_loading(choose_model(model)[0])])
    # A full garbage collection walks every object: with the knowledge base and the model that took
    # 0.2 s. They live as long as the server, so they are frozen out of the collector's walk (once
    # collected), and Python's own occasional full collections stay short.
    gc.collect()
    gc.freeze()
