"""The clinician's app through Streamlit's AppTest: each input path, each bad input, deep links,
the model panel and the downloads. Rankings come from the likelihood ranker (or a stub model
directory), so the whole file runs in seconds."""

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from conftest import APP, phenopacket, shown, values

import rare_disease_rft.registry
import rare_disease_rft.resources
from app.patient import MAX_TERMS, MAX_TEXT_CHARS, MAX_UPLOAD_BYTES
from app.report import csv_bytes, explanation_markdown, json_bytes
from rare_disease_rft.cli import main
from rare_disease_rft.explain import rank_and_explain
from rare_disease_rft.rankers import Case, Ranking
from rare_disease_rft.rankers.knowledge import LikelihoodRanker
from rare_disease_rft.results import RankedGene

BENCHMARK = APP.parent.parent / "results" / "benchmark.json"  # the numbers the sidebar must show
# Arachnodactyly, disproportionate tall stature, ectopia lentis: features of Marfan syndrome (FBN1).
MARFAN = ["HP:0001166", "HP:0001519", "HP:0001083"]
SCOLIOSIS = "HP:0002650"  # usual in Marfan syndrome: excluded, it counts against FBN1
MARFAN_NOTE = ("A 15-year-old boy with arachnodactyly, disproportionate tall stature and ectopia lentis. "
               "There was no scoliosis.")


def unescaped(elements) -> str:
    """The Markdown of the elements, joined, without the escapes that keep data text literal."""
    return " ".join(values(elements))


def ranked_genes(at) -> list[str]:
    tables = [d.value for d in at.main.dataframe if "gene" in d.value.columns]
    return tables[0]["gene"].tolist() if tables else []


def ranking_row(at, gene):
    frame = next(d.value for d in at.main.dataframe if "gene" in d.value.columns)
    return frame[frame["gene"] == gene].iloc[0]


def evidence(at, gene) -> str:
    """The evidence panel of a ranked gene, opened (its evidence is drawn once it is)."""
    at.session_state[f"evidence_{gene}"] = True
    at.run()
    assert not at.exception, at.exception
    return unescaped(next(e for e in at.main.expander if e.label.endswith(f". {gene}")).markdown)


def search_and_add(at, query, status="present"):
    at.text_input(key="search").set_value(query).run()
    at.button(key=f"add_{status}").click().run()
    assert not at.exception, at.exception
    return at


def rank(at):
    at.button(key="rank").click().run()
    assert not at.exception, at.exception
    return at


def accuracy(at) -> dict[str, str]:
    """The About panel's measured accuracy (a Markdown table), measure -> value."""
    table = next(m.value for m in at.sidebar.markdown if m.value.startswith("| measure | value |"))
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in table.splitlines()[2:]]
    return dict(rows)


def term_status(at, term_id):
    return at.radio(key=f"status_{term_id}").value


def expected_genes(hpo, present, excluded=()):
    result = rank_and_explain(LikelihoodRanker(hpo), Case.from_ids(hpo, present, excluded), top=20, hpo=hpo)
    return [g.gene for g in result.genes]


# ------------------------------------------------------------------------------ the page
def test_page_states_the_model_its_versions_accuracy_and_that_it_is_no_diagnostic_device(open_app, hpo):
    at = open_app()
    assert "not a diagnostic device" in at.main.warning[0].value
    sidebar = unescaped(at.sidebar.markdown)
    assert "**likelihood** (knowledge)" in sidebar
    assert f"HPO release (knowledge base): {hpo.version}" in sidebar
    assert "**Measured accuracy** on the data/phenopacket-store/test.jsonl" in sidebar
    measured = json.loads(BENCHMARK.read_text())["models"]["likelihood"]["top1"]
    assert accuracy(at)["causal gene ranked first"] == f"{measured:.1%}"
    assert at.sidebar.get("vega_lite_chart") == []  # its top-k curve, drawn once its expander is opened
    at.session_state["topk_curve"] = True  # opened
    at.run()
    assert not at.exception, at.exception
    charts = at.sidebar.get("vega_lite_chart")
    curve = pa.ipc.open_stream(charts[0].proto.data.data).read_all().to_pydict()
    benchmark_curve = json.loads(BENCHMARK.read_text())["models"]["likelihood"]["topk_curve"]
    assert len(charts) == 1 and curve == {"k": list(range(1, len(benchmark_curve) + 1)), "top k": benchmark_curve}
    assert "not a diagnostic device" in at.sidebar.info[0].value
    assert ranked_genes(at) == []


# ------------------------------------------------------------------------------ search
def test_search_by_label_synonym_and_id_then_rank(open_app, hpo):
    at = open_app()
    at.text_input(key="search").set_value("arachnodac").run()
    assert shown(at.radio(key="suggestion").options[0]) == "Arachnodactyly (HP:0001166)"
    at.button(key="add_present").click().run()
    at.text_input(key="search").set_value("marfanoid habitus").run()
    by_synonym = "Disproportionate tall stature (HP:0001519) — “Marfanoid habitus”"
    assert shown(at.radio(key="suggestion").options[0]) == by_synonym
    at.button(key="add_present").click().run()
    search_and_add(at, "HP:0001083")
    assert [term_status(at, t) for t in MARFAN] == ["present"] * 3
    rank(at)
    genes = ranked_genes(at)
    assert genes == expected_genes(hpo, MARFAN) and "FBN1" in genes
    assert any("ranked in" in c for c in values(at.main.caption))
    assert [e.label for e in at.main.expander] == [f"{rank}. {gene}" for rank, gene in enumerate(genes, 1)]
    # the first gene's panel is open, with its evidence; the others' are drawn once opened
    assert [bool(e.markdown) for e in at.main.expander] == [True] + [False] * (len(genes) - 1)
    panel = evidence(at, "FBN1")
    assert "Arachnodactyly (HP:0001166): annotated with this term" in panel
    assert "(https://www.genenames.org/data/gene-symbol-report/#!/hgnc_id/HGNC:3603)" in panel
    assert "(https://www.omim.org/entry/134797)" in panel
    assert [b.label for b in at.download_button] == ["Download CSV", "Download JSON (with evidence)"]
    assert f"[Link to this ranking](/?present={','.join(MARFAN)})" in unescaped(at.main.markdown)


def test_an_alternative_id_is_mapped_with_a_visible_note(open_app):
    at = open_app()
    at.text_input(key="search").set_value("HP:0001255").run()
    note = "HP:0001255 is an alternative id of HP:0001263 (Global developmental delay)"
    assert values(at.main.info) == [note]
    at.button(key="add_present").click().run()
    assert term_status(at, "HP:0001263") == "present"
    assert note in values(at.main.info)  # still shown beside the term list


def test_an_unknown_id_gives_a_clear_message(open_app, hpo):
    at = open_app()
    at.text_input(key="search").set_value("HP:9999999").run()
    assert values(at.main.error) == [f"HP:9999999 is not a term of HPO release {hpo.version}; "
                                     "check the id or use a newer release"]
    assert not at.radio


def test_a_search_without_match_says_so(open_app):
    at = open_app()
    at.text_input(key="search").set_value("qwertyuiop").run()
    assert "No HPO term matches “qwertyuiop”" in at.main.warning[-1].value


def test_ranking_without_a_present_term_asks_for_one(open_app):
    at = rank(open_app())
    message = "Cannot rank yet: no present phenotype given; a ranking needs at least one present HPO term."
    assert values(at.main.error) == [message]
    search_and_add(at, "HP:0001083", "excluded")
    assert values(rank(at).main.error) == [message]
    assert ranked_genes(at) == []


# ------------------------------------------------------------------------------ pasted text
def test_pasted_text_terms_are_reviewed_flipped_and_removed_before_ranking(open_app, hpo):
    at = open_app()
    at.text_area(key="note_text").set_value(MARFAN_NOTE)
    at.button(key="find_terms").click().run()
    assert "Recognised 3 present and 1 excluded terms (and the patient's sex and age: male, 15 years)" \
        in at.main.success[0].value
    assert [term_status(at, t) for t in [*MARFAN, SCOLIOSIS]] == ["present"] * 3 + ["excluded"]
    assert at.selectbox(key="sex").value == "MALE" and at.number_input(key="age").value == 15.0
    evidence = "A 15-year-old boy with “arachnodactyly”, disproportionate tall stature and ecto…"
    assert evidence in unescaped(at.main.caption)
    assert ranked_genes(at) == []  # nothing is ranked before the clinician confirms

    rank(at)
    assert ranked_genes(at) == expected_genes(hpo, MARFAN, [SCOLIOSIS])
    assert ranking_row(at, "FBN1")["contradicting excluded terms"] == "Scoliosis"

    at.radio(key=f"status_{SCOLIOSIS}").set_value("present").run()
    assert ranked_genes(at) == []  # a changed case clears the old ranking
    at.button(key="remove_HP:0001083").click().run()
    assert "status_HP:0001083" not in [r.key for r in at.radio]
    rank(at)
    present = ["HP:0001166", "HP:0001519", SCOLIOSIS]
    assert ranked_genes(at) == expected_genes(hpo, present)
    assert ranking_row(at, "FBN1")["matched terms"] == "Arachnodactyly; Disproportionate tall stature; Scoliosis"


def test_a_huge_paste_is_refused_with_the_limit(open_app):
    at = open_app()
    at.text_area(key="note_text").set_value("seizures " * (MAX_TEXT_CHARS // 9 + 1))
    at.button(key="find_terms").click().run()
    assert f"the limit is {MAX_TEXT_CHARS:,}" in at.main.error[0].value
    assert not [r for r in at.radio if r.key.startswith("status_")]


def test_an_empty_paste_or_one_without_findings_says_so(open_app):
    at = open_app()
    at.button(key="find_terms").click().run()
    assert "the text box is empty" in at.main.error[0].value
    at.text_area(key="note_text").set_value("The weather was fine on the day of the visit.")
    at.button(key="find_terms").click().run()
    assert "No HPO term was recognised in the text" in at.main.warning[-1].value


def test_a_relatives_finding_in_pasted_text_is_left_out_with_a_note(open_app):
    at = open_app()
    at.text_area(key="note_text").set_value("She denies hypotonia. Mother has hypotonia. Family history of deafness.")
    at.button(key="find_terms").click().run()
    assert term_status(at, "HP:0001252") == "excluded"  # her denial stands against her mother's hypotonia
    assert "status_HP:0000365" not in [r.key for r in at.radio]
    assert "Hearing impairment (HP:0000365) is stated of a relative, not the patient: left out" in values(at.main.info)
    at = open_app()
    at.text_area(key="note_text").set_value("Her father has scoliosis.")
    at.button(key="find_terms").click().run()
    assert "No finding of the patient's was recognised in the text, only of relatives" in at.main.warning[-1].value


# ------------------------------------------------------------------------------ phenopackets
def upload(at, data: bytes, name="patient.json"):
    at.file_uploader(key="phenopacket").set_value((name, data, "application/json")).run()
    assert not at.exception, at.exception
    return at


def test_a_phenopacket_upload_fills_in_terms_sex_and_age_with_mapped_ids_noted(open_app):
    packet = phenopacket()
    packet["phenotypicFeatures"][1]["type"]["id"] = "HP:0001255"  # an alternative id of HP:0001263
    at = upload(open_app(), json.dumps(packet).encode())
    assert at.main.success[0].value == "Read 2 present and 1 excluded terms from the phenopacket."
    assert [term_status(at, t) for t in ("HP:0001250", "HP:0001263", "HP:0000252")] == \
        ["present", "present", "excluded"]
    assert "HP:0001255 is an alternative id of HP:0001263 (Global developmental delay)" in values(at.main.info)
    assert at.selectbox(key="sex").value == "FEMALE" and at.number_input(key="age").value == 4.5


def test_a_phenopacket_of_an_undiagnosed_patient_is_read(open_app, hpo):
    packet = phenopacket(subject={"id": "p1", "sex": "MALE"})
    del packet["interpretations"], packet["metaData"], packet["diseases"]
    at = rank(upload(open_app(), json.dumps(packet).encode()))
    assert ranked_genes(at) == expected_genes(hpo, ["HP:0001250", "HP:0001263"], ["HP:0000252"])


@pytest.mark.parametrize("data, message", [
    (b"{not json", "This file cannot be used: not valid JSON (Expecting property name enclosed in double quotes "
                   "at line 1, column 2)"),
    (b"\xff\xfe\x00garbage", "This file cannot be used: not UTF-8 text (byte 0xff at offset 0)"),
    (b"[1, 2]", "This file cannot be used: not a phenopacket"),
    (json.dumps({"id": "x"}).encode(), "This file cannot be used: not a phenopacket: no 'subject' or "
                                       "'phenotypicFeatures'."),
    (json.dumps({"subject": {"id": "x"}, "phenotypicFeatures": [{"type": {"id": "HP:9999999"}}]}).encode(),
     "This phenopacket cannot be used: no present phenotype (only excluded or unknown terms)."),
    (json.dumps({"subject": "x", "phenotypicFeatures": [{"type": {"id": "HP:0001250"}}]}).encode(),
     "This file cannot be used: does not follow the phenopacket schema: subject is a string, expected an object."),
    (b" " * (MAX_UPLOAD_BYTES + 1), "the limit is 1 MB"),
])
def test_a_malformed_upload_gives_a_clear_message(open_app, data, message):
    at = upload(open_app(), data)
    assert message in values(at.main.error)[0]
    assert not [r for r in at.radio if r.key.startswith("status_")]


# ------------------------------------------------------------------------------ deep links
def test_a_deep_link_opens_with_the_ranking_shown(open_app, hpo):
    at = open_app(present=",".join(MARFAN), excluded=SCOLIOSIS)
    assert ranked_genes(at) == expected_genes(hpo, MARFAN, [SCOLIOSIS])
    assert term_status(at, SCOLIOSIS) == "excluded"
    link = f"[Link to this ranking](/?present={','.join(MARFAN)}&excluded={SCOLIOSIS})"
    assert link in unescaped(at.main.markdown)


def test_a_deep_link_with_an_unknown_id_names_it_and_ranks_nothing(open_app, hpo):
    at = open_app(present="HP:0001166,HP:9999999")
    assert values(at.main.error) == [f"HP:9999999 is not a term of HPO release {hpo.version}; "
                                     "check the id or use a newer release"]
    assert ranked_genes(at) == []
    assert term_status(at, "HP:0001166") == "present"  # the usable terms are kept for the clinician


def test_a_term_outside_the_phenotype_branch_is_kept_and_noted(open_app, hpo):
    at = open_app(present="HP:0001166,HP:0000005")
    assert ranked_genes(at) == expected_genes(hpo, ["HP:0001166", "HP:0000005"])
    assert term_status(at, "HP:0000005") == "present"
    assert "HP:0000005 (Mode of inheritance) is not a phenotypic abnormality (outside HP:0000118); it is kept, " \
           "but no gene's phenotype annotations use it" in values(at.main.info)


def test_a_deep_link_with_too_many_terms_is_refused(open_app):
    at = open_app(present=",".join(f"HP:{n:07d}" for n in range(1, MAX_TERMS + 2)))
    assert at.main.error[0].value == f"A patient can have at most {MAX_TERMS} terms; 0 are listed and " \
                                     f"{MAX_TERMS + 1} more were given."
    assert ranked_genes(at) == []


def test_new_patient_forgets_everything_entered(open_app):
    at = open_app(present=",".join(MARFAN))
    at.text_area(key="note_text").set_value(MARFAN_NOTE)
    at.button(key="find_terms").click().run()
    at.button(key="new_patient").click().run()
    assert not [r for r in at.radio if r.key.startswith("status_")] and ranked_genes(at) == []
    assert (at.text_area(key="note_text").value, at.selectbox(key="sex").value, at.number_input(key="age").value) \
        == ("", None, None)


# ------------------------------------------------------------------------------ downloads
def test_downloads_hold_the_ranking_and_its_evidence(hpo):
    case = Case.from_ids(hpo, MARFAN, [SCOLIOSIS], sex="MALE", age_years=15.0)
    result = rank_and_explain(LikelihoodRanker(hpo), case, top=5, hpo=hpo, notes=["a note"])
    rows = csv_bytes(result).decode().splitlines()
    assert rows[0] == ("id,rank,gene,probability,score,genes with this score,diseases,matched terms,"
                       "contradicting excluded terms,unexplained terms,similar published cases,variants,note")
    genes = [g.gene for g in result.genes]
    fbn1 = genes.index("FBN1")
    assert rows[1 + fbn1].startswith(f",{fbn1 + 1},FBN1,,") and "OMIM:154700 Marfan syndrome" in rows[1 + fbn1] and rows[1 + fbn1].endswith("Scoliosis,,,,")
    document = json.loads(json_bytes(result))
    assert document["present"][0] == "HP:0001166"
    assert document["versions"] == {"model": "likelihood", "kind": "knowledge", "hpo": hpo.version}
    assert [g["gene"] for g in document["genes"]] == genes
    assert document["genes"][fbn1]["explanation"]["contradicting"][0]["id"] == SCOLIOSIS
    assert (document["sex"], document["age_years"], document["notes"]) == ("MALE", 15.0, ["a note"])


def test_a_gene_known_only_from_cases_is_explained_by_what_its_cases_report(hpo):
    match = {"id": "HP:0001166", "label": "Arachnodactyly", "match": "exact", "frequency": 0.5,
             "via": {"id": "HP:0001166", "label": "Arachnodactyly"}}
    explanation = {"gene_annotated": False, "annotations_from": "published cases", "matched": [match],
                   "contradicting": [], "unexplained": [], "similar_cases": []}
    text = explanation_markdown(RankedGene(1, "MDGA2", 1.0, None, explanation), hpo)
    assert "its published cases in the model's case index stand in" in text
    assert "Arachnodactyly (HP:0001166): reported in its cases; share of its published cases 50%" in text
    unknown = {**explanation, "annotations_from": None, "matched": []}
    assert "ranked it from other evidence" in explanation_markdown(RankedGene(1, "MDGA2", 1.0, None, unknown), hpo)


# ------------------------------------------------------------------------------ models
def test_a_missing_default_model_falls_back_to_likelihood_with_a_note(open_app, hpo, monkeypatch, tmp_path,
                                                                      fresh_model_cache):
    monkeypatch.setattr(rare_disease_rft.resources, "DEFAULT_MODEL_DIR", tmp_path / "not-trained")
    at = open_app("default", present=",".join(MARFAN))
    assert "No trained default model yet" in at.sidebar.warning[0].value
    assert "**likelihood** (knowledge)" in values(at.sidebar.markdown)
    assert ranked_genes(at) == expected_genes(hpo, MARFAN)


def test_a_model_that_cannot_be_loaded_is_reported_in_the_page(open_app, tmp_path, fresh_model_cache):
    (tmp_path / "config.json").write_text('{"kind": "policy"}')  # no weights beside it
    at = open_app(str(tmp_path), present=",".join(MARFAN))
    assert values(at.main.error)[0].startswith(f"The model '{tmp_path}' could not be loaded:")
    assert ranked_genes(at) == []


class StubLLM(LikelihoodRanker):
    """Stands in for an LLM model directory: the likelihood order, probabilities, text and similar cases."""

    name = "stub-llm"

    def rank(self, case):
        ranking = super().rank(case)
        weights = np.exp(ranking.scores - ranking.scores.max())
        return Ranking(ranking.genes, ranking.scores, weights / weights.sum(),
                       text="1. FBN1: arachnodactyly with ectopia lentis is Marfan syndrome.")

    def similar_cases(self, case, gene):
        return [{"case_id": "PMID_123_1", "pmid": "PMID:123", "similarity": 0.9}]


def test_an_llm_model_shows_its_reasoning_probabilities_card_and_similar_cases(open_app, monkeypatch, tmp_path,
                                                                               fresh_model_cache):
    model_dir = tmp_path / "llm"
    model_dir.mkdir()
    (model_dir / "config.json").write_text(json.dumps({
        "kind": "llm", "name": "stub-llm", "created": "2026-11-25T00:00:00Z", "model": {"id": "SmolLM2-135M"},
        "versions": {"data": {"hpo_release": "2025-01-16", "phenopacket_store_commit": "b694d17"},
                     "code": {"package": "0.1.0", "git_commit": "abc123"}},
        "validation_metrics": {"n": 100, "top1": 0.5, "top5": 0.6, "top10": 0.7, "mrr": 0.55, "found": 0.9}}))
    (model_dir / "MODEL_CARD.md").write_text("# Model card: stub-llm\n")
    monkeypatch.setattr(rare_disease_rft.registry, "load_ranker", lambda model, **_: StubLLM())
    at = open_app(str(model_dir), present=",".join(MARFAN))
    sidebar = unescaped(at.sidebar.markdown)
    assert "**stub-llm** (llm)" in sidebar and "base language model: SmolLM2-135M" in sidebar
    assert "phenopacket-store commit: b694d17" in sidebar and accuracy(at)["causal gene ranked first"] == "50.0%"
    assert [c.value for c in at.sidebar.text] == ["# Model card: stub-llm"]  # shown as text, never rendered
    assert values(at.main.text) == ["1. FBN1: arachnodactyly with ectopia lentis is Marfan syndrome."]
    row = ranking_row(at, "FBN1")
    assert 0 < row["probability"] <= 1
    panel = unescaped(at.main.expander[0].markdown)  # the first gene's, open
    assert "[PMID:123](https://pubmed.ncbi.nlm.nih.gov/123/), case PMID_123_1: similarity 0.90" in panel


def test_the_servers_warm_up_loads_what_every_session_then_shares(monkeypatch, fresh_model_cache):
    import gc

    import app.server
    from app.loading import knowledge_base, model_loading
    from rare_disease_rft.hpo import load_hpo

    frozen = []
    monkeypatch.setattr(gc, "freeze", lambda: frozen.append(True))  # the test process keeps collecting
    app.server.warm_up("likelihood")
    loading = model_loading("likelihood")  # the page's call: the warm-up's loading, done
    assert loading.done() and isinstance(loading.result(), LikelihoodRanker)
    assert knowledge_base() is load_hpo() and frozen == [True]


# ------------------------------------------------------------------------------ `rdrft app`
@pytest.mark.parametrize("argv, message", [
    (["--port", "0"], "rdrft app: error: --port must be between 1 and 65535, got 0"),
    (["--model", "no/such/model"], "rdrft app: error: --model no/such/model: model 'no/such/model' is neither a "
                                   "built-in ranker (phenomizer, likelihood, default) nor a model directory with a "
                                   "config.json"),
])
def test_rdrft_app_refuses_bad_arguments_before_starting_a_server(capsys, argv, message):
    assert main(["app", *argv]) == 2
    assert capsys.readouterr().err.strip() == message


def test_candidate_genes_from_a_list_restrict_the_ranking_and_unknown_ones_come_last(open_app):
    at = open_app(present=",".join(MARFAN))
    at.text_area(key="gene_list").set_value("TGFBR2, FBN1\nNOTAGENE1").run()
    at.button(key="use_candidates").click().run()
    assert not at.exception, at.exception
    assert "Ranking only 3 candidate genes" in " ".join(s.value for s in at.success)
    rank(at)
    assert ranked_genes(at) == ["FBN1", "TGFBR2", "NOTAGENE1"]
    assert "not in the knowledge base" in ranking_row(at, "NOTAGENE1")["note"]
    at.button(key="clear_candidates").click().run()
    rank(at)
    assert len(ranked_genes(at)) == 20


def test_a_vcf_upload_gives_its_genes_as_candidates_and_leaves_no_file_behind(tmp_path, monkeypatch):
    import types

    import app.streamlit_app as page  # noqa: F401  (the page's functions, outside a running page)

    monkeypatch.setattr(page.tempfile, "tempdir", str(tmp_path))
    vcf = Path(__file__).parent / "fixtures" / "vcf" / "vep.vcf"
    upload = types.SimpleNamespace(name="proband.vcf", getvalue=vcf.read_bytes)
    found = page.read_candidates("", upload)
    assert found.source == "proband.vcf" and {"SCN1A", "STXBP1", "CDKL5"} <= set(found.symbols())
    assert list(tmp_path.iterdir()) == []


def test_the_evidence_names_the_diseases_that_match_with_their_inheritance(open_app):
    at = open_app(present=",".join(MARFAN))
    panel = evidence(at, "FBN1")
    assert "**Diseases of the gene whose annotations match**" in panel
    assert "Marfan syndrome ([OMIM:154700](https://www.omim.org/entry/154700)), autosomal dominant inheritance" in panel
