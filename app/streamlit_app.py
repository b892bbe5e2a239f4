"""The clinician's page: describe a patient, get candidate genes ranked with the evidence for each.

Served by ``rdrft app`` (``app.server``); the model comes from ``RDRFT_APP_MODEL``, and
``RDRFT_APP_TRUST_REMOTE_CODE`` carries the user's ``--trust-remote-code`` (``app.loading``).
The page lays out what ``app.patient``, ``app.report`` and the library compute. Patient data
lives in the browser session only: nothing is written to disk or logged.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from urllib.parse import quote

import streamlit as st

from app.loading import choose_model, knowledge_base, model_loading, served_model
from app.patient import (EXCLUDED, MAX_TEXT_CHARS, MAX_UPLOAD_MB, PRESENT, InputError, PatientEntry, link_ids,
                         read_phenopacket, read_text)
from app.report import csv_bytes, explanation_markdown, json_bytes, literal, markdown_escape, model_facts, table
from rare_disease_rft.explain import rank_and_explain
from rare_disease_rft.hpo import HPO, HPOError, is_hpo_id
from rare_disease_rft.inputs.candidates import CandidateError, Candidates, parse_gene_list, read_vcf
from rare_disease_rft.inputs.concepts import ConceptRecognizer
from rare_disease_rft.rankers import Ranker
from rare_disease_rft.tasks import MAX_AGE_YEARS

TOP_GENES = 20
CHART_GENES = 10
SUGGESTIONS = 8
SEXES = {None: "not given", "FEMALE": "female", "MALE": "male", "OTHER_SEX": "other", "UNKNOWN_SEX": "unknown"}
# an exome's annotated VCF of rare variants is a few MB; a whole genome's belongs in `rdrft rank --vcf`
MAX_VCF_MB = 50
DISCLAIMER = ("**A research tool, not a diagnostic device.** It ranks genes by how well published knowledge "
              "and case reports fit the phenotypes entered; a clinical geneticist must review every result. "
              "Patient data stays in this browser session: it is not stored or logged.")


@st.cache_resource(show_spinner="Loading the concept recogniser…")
def recognizer() -> ConceptRecognizer:
    return ConceptRecognizer.default()


def loaded_ranker(model: str) -> Ranker | None:
    """The ranker, waiting for it if it is still loading; None (with the reason shown) if it cannot load."""
    loading = model_loading(model)
    try:
        if not loading.done():
            with st.spinner("Loading the model…"):
                return loading.result()
        return loading.result()
    except Exception as err:  # a corrupt or incompatible model directory: say so, not a traceback
        st.error(literal(f"The model '{model}' could not be loaded: {err}"))
        return None


def reset_ranking() -> None:
    st.session_state.result = None


def remove_term(term_id: str) -> None:
    st.session_state.patient.remove(term_id)
    reset_ranking()


def flip_term(term_id: str) -> None:
    st.session_state.patient.set_status(term_id, st.session_state[f"status_{term_id}"])
    reset_ranking()


def new_patient() -> None:
    """Forgets everything entered, for the next patient at a shared computer."""
    st.session_state.patient = PatientEntry()
    st.session_state.update(search="", note_text="", sex=None, age=None, gene_list="", candidates=None)
    reset_ranking()


def add_terms(hpo: HPO, ids: list[str], status: str, source: str, evidence: dict[str, str] | None = None) -> bool:
    """Adds terms to the patient, showing why any cannot be used; True when all could."""
    try:
        problems = st.session_state.patient.add(hpo, ids, status, source, evidence)
    except InputError as err:
        problems = [str(err)]
    for problem in problems:
        st.error(literal(problem))
    reset_ranking()
    return not problems


def rank(hpo: HPO, model: str) -> None:
    patient: PatientEntry = st.session_state.patient
    notes = list(patient.notes)
    try:
        case = patient.case(hpo, notes)
    except HPOError as err:
        st.error(literal(f"Cannot rank yet: {err}."))
        return
    ranker = loaded_ranker(model)
    if ranker is None:
        return
    started = time.perf_counter()
    st.session_state.result = rank_and_explain(ranker, case, top=TOP_GENES, hpo=hpo, notes=notes,
                                               candidates=st.session_state.get("candidates"))
    st.session_state.ranked_in = time.perf_counter() - started


# ------------------------------------------------------------------------------ inputs
def search_input(hpo: HPO) -> None:
    query = st.text_input("Search HPO terms by label, synonym or id", key="search", live=True,
                          placeholder="e.g. seizure, epilepsy, HP:0001250").strip()
    if not query:
        return
    if is_hpo_id(query):
        resolution = hpo.resolve(query)
        if resolution.id is None:
            st.error(literal(resolution.note))
            return
        if resolution.note:
            st.info(literal(resolution.note))
        # offered as typed, so adding it keeps the note on how it was mapped
        shown = {query: f"{hpo.name(resolution.id)} ({resolution.id})"}
    else:
        shown = {term.id: f"{term.name} ({term.id})" + ("" if text == term.name else f" — “{text}”")
                 for term, text in hpo.search(query, SUGGESTIONS)}
    if not shown:
        st.warning(f"No HPO term matches “{literal(query)}”. Try another word or a synonym; ids look like HP:0001250.")
        return
    # option labels are Markdown too; term names come from the release files
    choice = st.radio("Suggestions", list(shown), format_func=lambda option: markdown_escape(shown[option]),
                      key="suggestion")
    present_col, excluded_col = st.columns(2)
    if present_col.button("Add as present", key="add_present", width="stretch"):
        add_terms(hpo, [choice], PRESENT, "search")
    if excluded_col.button("Add as excluded (explicitly absent)", key="add_excluded", width="stretch"):
        add_terms(hpo, [choice], EXCLUDED, "search")


def paste_input(hpo: HPO) -> None:
    text = st.text_area("Paste a clinical note, a case description or an abstract", key="note_text", height=160,
                        help=f"Up to {MAX_TEXT_CHARS:,} characters. Recognised terms are listed below for review.")
    case_report = st.checkbox("This is a published case report: read only what is about the patient "
                              "(skips introduction, discussion and relatives)", key="case_report")
    if not st.button("Find HPO terms in the text", key="find_terms"):
        return
    try:
        reading = read_text(recognizer(), text, case_report)
    except InputError as err:
        st.error(literal(str(err)))
        return
    for note in reading.notes:  # findings the text states of relatives, left out
        st.info(literal(note))
    if not reading.present and not reading.excluded:
        st.warning(("No finding of the patient's was recognised in the text, only of relatives. " if reading.notes
                    else "No HPO term was recognised in the text. ") + "Describe findings in clinical words "
                   "(e.g. “seizures”, “hypotonia”) or search for the terms instead.")
        return
    add_terms(hpo, reading.present, PRESENT, "text", reading.evidence)
    add_terms(hpo, reading.excluded, EXCLUDED, "text", reading.evidence)
    stated = []
    if reading.sex and st.session_state.get("sex") is None:
        st.session_state.sex = reading.sex
        stated.append(SEXES[reading.sex])
    if reading.age_years is not None and st.session_state.get("age") is None:
        st.session_state.age = reading.age_years
        stated.append(f"{reading.age_years:g} years")
    st.success(f"Recognised {len(reading.present)} present and {len(reading.excluded)} excluded terms"
               + (f" (and the patient's sex and age: {', '.join(stated)})" if stated else "")
               + ". Check them below: flip or remove any before ranking.")


def phenopacket_input(hpo: HPO) -> None:
    upload = st.file_uploader("Upload a GA4GH phenopacket (JSON)", type=["json"], key="phenopacket",
                              max_upload_size=MAX_UPLOAD_MB)
    # the uploader keeps its file across reruns; read each upload once
    if upload is None or st.session_state.get("read_upload") == upload.file_id:
        return
    st.session_state.read_upload = upload.file_id
    try:
        reading = read_phenopacket(upload.getvalue(), hpo)
    except InputError as err:
        st.error(literal(str(err)))
        return
    add_terms(hpo, reading.present, PRESENT, "phenopacket")
    add_terms(hpo, reading.excluded, EXCLUDED, "phenopacket")
    for note in reading.notes:
        st.info(literal(note))
    if reading.sex:
        st.session_state.sex = reading.sex
    if reading.age_years is not None:
        st.session_state.age = reading.age_years
    st.success(f"Read {len(reading.present)} present and {len(reading.excluded)} excluded terms from the "
               "phenopacket.")


def candidates_input() -> None:
    """Candidate genes from sequencing (a gene list, or a VCF annotated by VEP or snpEff): the ranking
    is then of these genes only. The VCF is read from a temporary file that is deleted at once."""
    genes = st.text_area("Gene list (a panel, or the genes with rare variants): symbols separated by commas or "
                         "one a line", key="gene_list", height=100)
    upload = st.file_uploader("…or a VCF annotated by VEP (CSQ) or snpEff (ANN)", type=["vcf", "gz"], key="vcf",
                              max_upload_size=MAX_VCF_MB)
    use_col, clear_col = st.columns(2)
    if clear_col.button("Rank all genes again", key="clear_candidates", width="stretch"):
        st.session_state.candidates = None
        reset_ranking()
    if use_col.button("Rank only these candidates", key="use_candidates", width="stretch"):
        try:
            st.session_state.candidates = read_candidates(genes, upload)
        except (CandidateError, InputError) as err:
            st.error(literal(str(err)))
            return
        reset_ranking()
    chosen: Candidates | None = st.session_state.get("candidates")
    if chosen is not None:
        st.success(f"Ranking only {len(chosen)} candidate genes from {markdown_escape(chosen.source)}.")
        for note in chosen.notes:
            st.info(markdown_escape(note))


def read_candidates(genes: str, upload) -> Candidates:
    if upload is not None:
        suffix = ".vcf.gz" if upload.name.endswith(".gz") else ".vcf"
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / f"upload{suffix}"
            path.write_bytes(upload.getvalue())
            found = read_vcf(path)
        found.source = upload.name  # the temporary path means nothing to the user
        return found
    if not genes.strip():
        raise InputError("Give a gene list or a VCF first.")
    return parse_gene_list(genes.replace(",", "\n"), "the gene list")


def open_deep_link(hpo: HPO, model: str) -> None:
    """``?present=HP:...&excluded=HP:...`` fills in the terms and ranks at once, on a session's first run."""
    present, excluded = link_ids(st.query_params)
    if not present and not excluded:
        return
    present_usable = add_terms(hpo, present, PRESENT, "link")
    excluded_usable = add_terms(hpo, excluded, EXCLUDED, "link")
    if present_usable and excluded_usable:
        rank(hpo, model)


# ------------------------------------------------------------------------------ the patient
def term_list() -> None:
    patient: PatientEntry = st.session_state.patient
    st.subheader(f"Patient's terms ({len(patient.ids(PRESENT))} present, {len(patient.ids(EXCLUDED))} excluded)")
    if not patient.terms:
        st.caption("None yet: search, paste a note or upload a phenopacket above.")
    for term in patient.terms.values():
        key = f"status_{term.id}"
        st.session_state[key] = term.status
        name_col, status_col, remove_col = st.columns([6, 3, 1], vertical_alignment="center")
        name_col.markdown(f"**{markdown_escape(term.label)}** ({term.id}) · from {term.source}")
        if term.evidence:
            name_col.caption(markdown_escape(term.evidence))
        status_col.radio("status", [PRESENT, EXCLUDED], key=key, horizontal=True, label_visibility="collapsed",
                         on_change=flip_term, args=(term.id,))
        remove_col.button("✕", key=f"remove_{term.id}", help="Remove this term", on_click=remove_term,
                          args=(term.id,))
    for note in patient.notes:
        st.info(literal(note))
    sex_col, age_col = st.columns(2)
    patient.sex = sex_col.selectbox("Sex (optional)", list(SEXES), format_func=SEXES.get, key="sex")
    patient.age_years = age_col.number_input("Age in years (optional)", min_value=0.0,
                                             max_value=float(MAX_AGE_YEARS), value=None, step=1.0, format="%.1f",
                                             key="age")


# ------------------------------------------------------------------------------ results
def evidence_key(gene: str) -> str:
    """The key of a gene's evidence panel: whether it is open, for as long as the gene is ranked."""
    return f"evidence_{gene}"


def results(hpo: HPO) -> None:
    result = st.session_state.result
    patient: PatientEntry = st.session_state.patient
    # computed before the first element is drawn: the page then gets the elements in one burst and
    # redraws once, not once for each few that trickle in
    frame = table(result)
    st.subheader("Ranked genes")
    st.caption(f"Model **{markdown_escape(result.model)}** · {len(result.present)} present and "
               f"{len(result.excluded)} excluded terms · ranked in {1000 * st.session_state.ranked_in:.0f} ms")
    for note in result.notes:  # what the ranking says (a tie at the top, a contradiction); the input's are above
        if note not in patient.notes:
            st.info(literal(note))
    evidence_col, reasoning_col = st.columns([3, 2]) if result.text else (st.container(), None)
    evidence_col.dataframe(frame, hide_index=True, column_config={
        "probability": st.column_config.ProgressColumn(
            "probability", format="percent", min_value=0, max_value=1,
            help="The model's chance that this gene is the causal one, calibrated on validation cases: of the "
                 "genes it ranks first with about 60%, about 60 in 100 are right (the model card gives the error)."),
        "score": st.column_config.NumberColumn("score", format="%.3f"),
    })
    if reasoning_col is not None:
        reasoning_col.markdown("**The model's reasoning**")
        reasoning_col.text(result.text)
    measure = "probability" if "probability" in frame else "score"
    top = frame.head(CHART_GENES)
    # a Vega-Lite spec as it is: st.bar_chart builds the same through Altair, validating it each run (0.1 s)
    st.vega_lite_chart(top[["gene", measure]], {
        "mark": {"type": "bar", "tooltip": True}, "height": 40 + 28 * len(top),
        "encoding": {"y": {"field": "gene", "type": "nominal", "sort": None, "title": None},
                     "x": {"field": measure, "type": "quantitative"}}})
    csv_col, json_col = st.columns(2)
    # written when asked for (the JSON of 20 explanations takes a while), and a download redraws nothing
    csv_col.download_button("Download CSV", lambda: csv_bytes(result), "gene_ranking.csv", "text/csv",
                            key="download_csv", on_click="ignore")
    json_col.download_button("Download JSON (with evidence)", lambda: json_bytes(result), "gene_ranking.json",
                             "application/json", key="download_json", on_click="ignore")
    page = quote((st.context.url or "").rstrip("/"), safe=":/%")  # the browser's address: nothing breaks the link out
    st.markdown(f"[Link to this ranking]({page}/?{patient.link_query()}) "
                "(it holds the terms: share it only where patient data may go)")
    st.markdown("**Evidence per gene**")
    # a panel's evidence is drawn once it is opened (which reruns the ranking's fragment): twenty
    # panels of it, most of them closed, were half of a ranking's redraw in the browser
    for entry in result.genes:
        panel = st.expander(f"{entry.rank}. {markdown_escape(entry.gene)}", expanded=entry.rank == 1,
                            key=evidence_key(entry.gene), on_change="rerun")
        if panel.open:
            panel.markdown(explanation_markdown(entry, hpo))


# ------------------------------------------------------------------------------ about
def about_model(hpo: HPO, model: str, model_dir: Path | None, note: str | None) -> None:
    with st.sidebar:
        st.header("About the model")
        try:
            facts = model_facts(model, model_dir, hpo)
        except (OSError, ValueError) as err:
            st.error(literal(f"The model directory {model_dir} cannot be read: {err}"))
            return
        if note:
            st.warning(note)
        st.markdown(f"**{markdown_escape(facts.name)}** ({markdown_escape(facts.kind)})")
        st.markdown("\n".join(f"- {what}: {markdown_escape(str(version))}" for what, version in facts.versions.items()))
        if facts.benchmark:
            st.markdown(f"**Measured accuracy** on the {markdown_escape(facts.benchmark_source)}:")
            b = facts.benchmark
            # a Markdown table, not st.table (nor st.dataframe), and the card as st.text, not st.code:
            # the first page then loads none of the table's, Arrow's or the code highlighter's scripts
            rows = {"cases": f"{b['n']:,}", "causal gene ranked first": f"{b['top1']:.1%}",
                    "… in the top 5": f"{b['top5']:.1%}", "… in the top 10": f"{b['top10']:.1%}",
                    "mean reciprocal rank": f"{b['mrr']:.3f}", "ranked at all": f"{b['found']:.1%}"}
            st.markdown("| measure | value |\n|:--|--:|\n" + "\n".join(f"| {m} | {v} |" for m, v in rows.items()))
        else:
            st.caption("No benchmark result of this model is on disk.")
        if facts.topk_curve:
            topk_curve(facts.topk_curve)
        if facts.card:
            with st.expander("Model card"):
                # Markdown from a model directory: shown as the text it is, never rendered (links, images)
                st.text(facts.card)
        st.info("**Research use only: not a diagnostic device.**")


@st.fragment
def topk_curve(curve: list[float]) -> None:
    """The top-k curve, drawn once its expander is opened (which reruns this part only): Vega's
    scripts, and Arrow's that carry a chart's data, are the most the first page would otherwise load."""
    shown = st.expander("Top-k curve: cases with the causal gene in the top k", key="topk_curve",
                        on_change="rerun")
    if shown.open:
        shown.vega_lite_chart({"k": range(1, len(curve) + 1), "top k": curve}, {
            "mark": {"type": "line", "tooltip": True}, "height": 200,
            "encoding": {"x": {"field": "k", "type": "quantitative", "title": "k: causal gene in the top k"},
                         "y": {"field": "top k", "type": "quantitative", "title": "share of cases"}}})


@st.fragment
def rank_and_results(hpo: HPO, model: str) -> None:
    """The buttons and the ranking: a click on "Rank genes" reruns this part only, not the inputs,
    the patient's terms and the sidebar above it."""
    rank_col, new_col = st.columns(2)
    if rank_col.button("Rank genes", key="rank", type="primary", width="stretch"):
        rank(hpo, model)
    if new_col.button("New patient (clear everything)", key="new_patient", on_click=new_patient, width="stretch"):
        st.rerun()  # the whole page, so the inputs above show their cleared state too
    if st.session_state.result:
        results(hpo)


def main() -> None:
    st.set_page_config(page_title="Rare-disease gene ranking", layout="wide")
    st.title("Which gene? Candidate genes from a patient's phenotypes")
    st.warning(DISCLAIMER)
    hpo = knowledge_base()
    model, model_dir, note = choose_model(served_model())
    if "patient" not in st.session_state:
        st.session_state.patient = PatientEntry()
        st.session_state.result = None
        open_deep_link(hpo, model)

    search_tab, text_tab, upload_tab, genes_tab = st.tabs(["Search HPO terms", "Paste clinical text",
                                                           "Upload phenopacket", "Candidate genes (sequencing)"])
    with search_tab:
        search_input(hpo)
    with text_tab:
        paste_input(hpo)
    with upload_tab:
        phenopacket_input(hpo)
    with genes_tab:
        candidates_input()
    term_list()
    rank_and_results(hpo, model)
    # last: the inputs reach the browser first
    about_model(hpo, model, model_dir, note)
    model_loading(model)


if __name__ == "__main__":  # Streamlit runs the page so; `app.server` imports it for its imports only
    main()
