import copy
import json
import os
import re
from pathlib import Path

import pytest

# Tests use their own cache so they never depend on (or pollute) the user's.
os.environ.setdefault("RDRFT_CACHE", os.path.join(os.path.dirname(__file__), "..", ".pytest_cache", "rdrft"))


@pytest.fixture(scope="session")
def hpo():
    from rare_disease_rft.hpo import load_hpo

    return load_hpo()


@pytest.fixture(scope="session")
def phenomizer(hpo):
    from rare_disease_rft.rankers.knowledge import PhenomizerRanker

    return PhenomizerRanker(hpo)


@pytest.fixture(scope="session")
def likelihood(hpo):
    from rare_disease_rft.rankers.knowledge import LikelihoodRanker

    return LikelihoodRanker(hpo)


PHENOPACKET = {
    "id": "PMID_111_STX_1",
    "subject": {"id": "STX_1", "sex": "FEMALE", "timeAtLastEncounter": {"age": {"iso8601duration": "P4Y6M"}}},
    "phenotypicFeatures": [
        {"type": {"id": "HP:0001250", "label": "Seizure"}},
        {"type": {"id": "HP:0001263", "label": "Global developmental delay"}},
        {"type": {"id": "HP:0000252", "label": "Microcephaly"}, "excluded": True},
    ],
    "interpretations": [{
        "id": "x", "progressStatus": "SOLVED",
        "diagnosis": {
            "disease": {"id": "OMIM:612164", "label": "Developmental and epileptic encephalopathy 4"},
            "genomicInterpretations": [{
                "subjectOrBiosampleId": "STX_1", "interpretationStatus": "CAUSATIVE",
                "variantInterpretation": {"variationDescriptor": {
                    "id": "c1501del_STXBP1", "geneContext": {"valueId": "HGNC:11444", "symbol": "STXBP1"}}},
            }],
        },
    }],
    "diseases": [{"term": {"id": "OMIM:612164", "label": "Developmental and epileptic encephalopathy 4"}}],
    "metaData": {"externalReferences": [{"id": "PMID:111", "description": "STXBP1-related disorders in 5 people"}]},
}


def phenopacket(**changes):
    """A valid phenopacket (STXBP1, PMID:111) with top-level keys replaced by ``changes``."""
    packet = copy.deepcopy(PHENOPACKET)
    packet.update(copy.deepcopy(changes))
    return packet


def with_pmid(packet, pmid):
    packet["metaData"] = {"externalReferences": [{"id": f"PMID:{pmid}", "description": "a title"}]}
    return packet


def write_json(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


def prepare_bundled(tmp_path_factory, hpo, name="bundled"):
    """The bundled phenopacket-store archive prepared with ``hpo`` into a new temporary folder."""
    from data_prep.phenopackets import prepare_phenopackets
    from rare_disease_rft.resources import BUNDLED_PHENOPACKETS

    out = tmp_path_factory.mktemp(name)
    prepare_phenopackets([BUNDLED_PHENOPACKETS], out, hpo=hpo)
    return out


@pytest.fixture(scope="session")
def bundled_task_dir(tmp_path_factory, hpo):
    """The bundled phenopacket-store archive prepared once per session (about 3 s)."""
    return prepare_bundled(tmp_path_factory, hpo)


@pytest.fixture(scope="session")
def small_task_dir(tmp_path_factory, bundled_task_dir):
    """A small train/validation/test set cut from the bundled data, for quick training runs."""
    from rare_disease_rft.tasks import read_tasks, write_tasks

    out = tmp_path_factory.mktemp("small")
    for name, n in (("train", 240), ("validation", 40), ("test", 40)):
        tasks = read_tasks(bundled_task_dir / f"{name}.jsonl")
        write_tasks(out / f"{name}.jsonl", tasks[:: max(1, len(tasks) // n)][:n])
    return out


HPO_OBO = """format-version: 1.2
data-version: hp/releases/2099-01-01

[Term]
id: HP:0000001
name: All

[Term]
id: HP:0000118
name: Phenotypic abnormality
is_a: HP:0000001 ! All

[Term]
id: HP:0000005
name: Mode of inheritance
is_a: HP:0000001 ! All

[Term]
id: HP:0000002
name: Tall
alt_id: HP:0000099
is_a: HP:0000118

[Term]
id: HP:0000003
name: Very tall
is_a: HP:0000002

[Term]
id: HP:0000010
name: Short
is_a: HP:0000118
"""
HPOA_HEADER = ("database_id\tdisease_name\tqualifier\thpo_id\treference\tevidence\tonset\tfrequency\tsex\tmodifier"
               "\taspect\tbiocuration\n")


def hpoa_row(disease, term, reference, frequency="", qualifier="", name=None):
    return (f"{disease}\t{name or 'Disease ' + disease}\t{qualifier}\t{term}\t{reference}\tPCS\t\t{frequency}"
            "\t\t\tP\tHPO:someone[2099-01-01]\n")


def write_hpo_release(folder, hpoa_rows, g2d_rows, version="2099-01-01", description='"HPO annotations"',
                      more_terms=""):
    """A small HPO release folder of the built form: hp.obo (six terms, and OBO stanzas
    ``more_terms``), phenotype.hpoa (rows as from :func:`hpoa_row`), genes_to_disease.txt
    ((NCBI id, symbol, disease) triples)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "hp.obo").write_text(HPO_OBO.replace("2099-01-01", version) + more_terms)
    (folder / "phenotype.hpoa").write_text(f"#description: {description}\n#version: {version}\n"
                                          + HPOA_HEADER + "".join(hpoa_rows))
    (folder / "genes_to_disease.txt").write_text(
        "ncbi_gene_id\tgene_symbol\tassociation_type\tdisease_id\tsource\n"
        + "".join(f"NCBIGene:{ncbi}\t{symbol}\tMENDELIAN\t{disease}\tmim2gene\n" for ncbi, symbol, disease in g2d_rows))
    return folder


APP = Path(__file__).resolve().parent.parent / "app" / "streamlit_app.py"


def shown(markdown: str) -> str:
    """Markdown as the page shows it: without the escapes that keep data text literal."""
    return re.sub(r"\\(.)", r"\1", markdown)


def values(elements) -> list[str]:
    """What the page's elements say, as the page shows it."""
    return [shown(e.value) for e in elements]


@pytest.fixture
def open_app(monkeypatch):
    """Opens the app's page (Streamlit's AppTest) with the likelihood ranker (or MODEL), optionally
    at a deep link: ``open_app(present="HP:...")``; a list value repeats the parameter."""
    from streamlit.testing.v1 import AppTest

    def open_(model="likelihood", **query):
        monkeypatch.setenv("RDRFT_APP_MODEL", model)
        at = AppTest.from_file(str(APP), default_timeout=60)
        at.query_params.update(query)
        at.run()
        assert not at.exception, at.exception
        return at
    return open_


@pytest.fixture
def fresh_model_cache():
    """The page caches models by name for the server's lifetime; tests that change what a name means
    start and end with an empty cache."""
    import streamlit as st

    st.cache_resource.clear()
    yield
    st.cache_resource.clear()
