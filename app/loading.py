"""What the app loads once per server process and every session shares: the HPO knowledge base
and the ranker, with the HGNC gene names and the concept recogniser beside it.

``rdrft app`` starts the loading as the server starts (``app.server``), before anybody opens the
page; a page run that comes first, or a test's page, starts the same loading itself. The loaded
objects are read-only: sessions never change them.
"""

from __future__ import annotations

import importlib
import os
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import streamlit as st

from app import MODEL_ENV, TRUST_REMOTE_CODE_ENV
from rare_disease_rft import registry
from rare_disease_rft.genes import gene_names
from rare_disease_rft.hpo import HPO, load_hpo
from rare_disease_rft.inputs.concepts import ConceptRecognizer
from rare_disease_rft.rankers import Ranker


def served_model() -> str:
    return os.environ.get(MODEL_ENV, registry.DEFAULT)


def choose_model(model: str) -> tuple[str, Path | None, str | None]:
    """What MODEL names: the ranker to load, its model directory (None for a built-in ranker), and a
    note when a knowledge-based ranker stands in for the default model that is not trained yet."""
    if model == registry.DEFAULT and not registry.is_trained(model):
        return "likelihood", None, ("No trained default model yet (`artifacts/default-model` is missing; "
                                    "`make run` trains it), so genes are ranked by the knowledge-based "
                                    "**likelihood** ranker.")
    if registry.is_built_in(model):
        return model, None, None
    return model, registry.model_folder(model), None


@st.cache_resource(show_spinner=False)
def knowledge_base() -> HPO:
    """``load_hpo``'s, through Streamlit's cache so that a page run arriving while the warm-up loads it
    waits for that load instead of starting its own."""
    return load_hpo()


@st.cache_resource(show_spinner=False)
def model_loading(model: str) -> Future:
    """Loads the ranker in the background, once per server, so the page is usable at once (an LLM
    takes many seconds); with it the HGNC names of the gene links, the concept recogniser and pandas
    (the results' table), so the first ranking or text reading does not wait for them either."""
    pool = ThreadPoolExecutor(max_workers=1)
    loading = pool.submit(_load_for_ranking, model)
    pool.shutdown(wait=False)  # the pool ends once its one task has
    return loading


def _load_for_ranking(model: str) -> Ranker:
    # looked up when called, so that a test's stand-in for load_ranker is the one used
    ranker = registry.load_ranker(model, trust_remote_code=os.environ.get(TRUST_REMOTE_CODE_ENV) == "1")
    gene_names()
    ConceptRecognizer.default()
    importlib.import_module("pandas")  # app.report imports it only for a ranking's table, after the first page
    return ranker
