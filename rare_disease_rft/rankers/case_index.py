"""Training case reports as vectors: what the published cases of each gene actually show.

HPO annotations say which phenotypes a gene's diseases can have; the case reports say which
ones are reported, and which are recorded as absent. The index keeps, for every training case,
an IC-weighted vector of its present terms (with their ancestors) and one of its excluded
terms, and per gene the counts of each term among its cases. Stored as safetensors + JSON.
"""

from __future__ import annotations

import json
import shutil
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import NamedTuple, Sequence

import numpy as np
import scipy.sparse as sp
from safetensors.numpy import load_file, save_file

from ..hpo import HPO
from ..resources import fingerprint
from ..tasks import Task
from .base import Case


def _normalise_rows(m: sp.csr_matrix) -> sp.csr_matrix:
    norms = np.sqrt(np.asarray(m.multiply(m).sum(axis=1)).ravel())
    return sp.diags(1.0 / np.maximum(norms, 1e-12)) @ m


class CaseIndex:
    """Training cases (their terms, genes and publications) and what follows from them."""

    def __init__(self, hpo: HPO, case_ids: list[str], case_pmids: list[str], genes: list[str],
                 case_gene: np.ndarray, present_terms: sp.csr_matrix, excluded_terms: sp.csr_matrix):
        self.hpo_version = hpo.version
        self.case_ids = case_ids
        self.case_pmids = case_pmids
        self.genes = genes  # genes that have training cases
        self.case_gene = case_gene  # case -> row of ``genes``
        self.present_terms = present_terms  # cases x terms, binary, closed under ancestors
        self.excluded_terms = excluded_terms  # cases x terms, binary, as reported
        #: unit-length IC-weighted vectors for cosine similarity between patients
        self.present = vectorise(hpo, present_terms)
        self.excluded = vectorise(hpo, excluded_terms)
        #: genes x cases membership, and per gene the number of cases showing / excluding each term
        self.membership = sp.csr_matrix(
            (np.ones(len(case_ids), np.float32), (case_gene, np.arange(len(case_ids)))),
            shape=(len(genes), len(case_ids)),
        )
        self.present_counts = (self.membership @ present_terms).tocsr()
        self.excluded_counts = (self.membership @ excluded_terms).tocsr()

    @classmethod
    def build(cls, hpo: HPO, tasks: Sequence[Task]) -> "CaseIndex":
        empty = sp.csr_matrix((0, len(hpo.ids)), dtype=np.float32)
        return cls(hpo, [], [], [], np.zeros(0, dtype=np.int64), empty, empty).with_cases(hpo, tasks)

    def with_cases(self, hpo: HPO, tasks: Sequence[Task]) -> "CaseIndex":
        """This index and the cases of ``tasks`` (the validation split, a lab's own solved cases)."""
        genes = sorted(set(self.genes) | {t.answer.gene for t in tasks})
        gene_row = {g: i for i, g in enumerate(genes)}
        renumber = np.array([gene_row[g] for g in self.genes], dtype=np.int64)
        new_genes = np.array([gene_row[t.answer.gene] for t in tasks], dtype=np.int64)
        present = _term_matrix(hpo, [t.present for t in tasks], closure=True)
        excluded = _term_matrix(hpo, [t.excluded for t in tasks], closure=False)
        return CaseIndex(
            hpo,
            case_ids=self.case_ids + [t.id for t in tasks],
            case_pmids=self.case_pmids + [t.pmid or t.id for t in tasks],
            genes=genes,
            case_gene=np.concatenate([renumber[self.case_gene], new_genes]),
            present_terms=sp.vstack([self.present_terms, present]).tocsr(),
            excluded_terms=sp.vstack([self.excluded_terms, excluded]).tocsr(),
        )

    def case_vectors(self, hpo: HPO, case: Case) -> tuple[TermVector, TermVector]:
        """The same vectors for a new patient, by their nonzero entries: ``index.present @
        vector.dense(terms)`` (or the product from those entries' columns alone) is one similarity
        per indexed case."""
        excluded = np.unique(hpo.term_indices([t for t in case.excluded if t in hpo.index]))
        return _unit_vector(hpo, hpo.closure(list(case.present))), _unit_vector(hpo, excluded)

    def cases_of_publication(self) -> dict[str, np.ndarray]:
        groups: dict[str, list[int]] = defaultdict(list)
        for i, pmid in enumerate(self.case_pmids):
            groups[pmid].append(i)
        return {p: np.array(v, dtype=np.int64) for p, v in groups.items()}

    # ------------------------------------------------------------------ storage
    def save(self, folder: str | Path) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        arrays = {"case_gene": self.case_gene}
        for name in ("present_terms", "excluded_terms"):
            m = getattr(self, name).tocsr()
            arrays.update({f"{name}.indices": m.indices.astype(np.int32), f"{name}.indptr": m.indptr.astype(np.int64)})
        save_file(arrays, str(folder / "case_index.safetensors"))
        meta = {"case_ids": self.case_ids, "case_pmids": self.case_pmids, "genes": self.genes,
                "hpo_version": self.hpo_version}
        (folder / "case_index.json").write_text(json.dumps(meta))

    @classmethod
    def load(cls, folder: str | Path, hpo: HPO) -> "CaseIndex":
        folder = Path(folder)
        arrays = load_file(str(folder / "case_index.safetensors"))
        meta = json.loads((folder / "case_index.json").read_text())
        if meta["hpo_version"] != hpo.version:
            raise ValueError(f"{folder} was built with HPO {meta['hpo_version']}, but HPO {hpo.version} is loaded")
        n_cases, n_terms = len(meta["case_ids"]), len(hpo.ids)

        def binary(name: str) -> sp.csr_matrix:
            indices = arrays[f"{name}.indices"]
            return sp.csr_matrix((np.ones(len(indices), np.float32), indices, arrays[f"{name}.indptr"]),
                                 shape=(n_cases, n_terms))

        return cls(hpo, meta["case_ids"], meta["case_pmids"], meta["genes"], arrays["case_gene"],
                   binary("present_terms"), binary("excluded_terms"))


def _term_matrix(hpo: HPO, term_lists: Sequence[Sequence[str]], closure: bool) -> sp.csr_matrix:
    """Binary cases x terms, optionally closed under ancestors."""
    rows, cols = [], []
    for i, terms in enumerate(term_lists):
        idx = hpo.closure(list(terms)) if closure else hpo.term_indices([t for t in terms if t in hpo.index])
        rows.append(np.full(len(idx), i, dtype=np.int64))
        cols.append(idx)
    rows_a = np.concatenate(rows) if rows else np.zeros(0, np.int64)
    cols_a = np.concatenate(cols) if cols else np.zeros(0, np.int64)
    m = sp.csr_matrix((np.ones(len(rows_a), np.float32), (rows_a, cols_a)), shape=(len(term_lists), len(hpo.ids)))
    m.data[:] = 1.0  # a term listed twice is still one term
    return m


class TermVector(NamedTuple):
    """A float32 vector over the knowledge base's terms by its nonzero entries: ``terms``
    (ascending) and their ``weights``."""

    terms: np.ndarray
    weights: np.ndarray

    def dense(self, n_terms: int) -> np.ndarray:
        out = np.zeros(n_terms, np.float32)
        out[self.terms] = self.weights
        return out


def _unit_vector(hpo: HPO, terms: np.ndarray) -> TermVector:
    """One patient's row of :func:`vectorise` (``terms`` ascending, each once): built directly, a
    single row through sparse matrices costs more than the whole similarity search. The norm is
    taken of the dense vector, as before: its sum may round otherwise over the nonzeros alone."""
    v = TermVector(terms, hpo.information_content[terms]).dense(len(hpo.ids))
    weights = v[terms] / max(float(np.linalg.norm(v)), 1e-12)
    nonzero = weights != 0  # the root's information content is 0
    return TermVector(terms[nonzero], weights[nonzero])


def vectorise(hpo: HPO, binary: sp.csr_matrix) -> sp.csr_matrix:
    """IC-weighted, unit-length rows: shared rare terms count more than shared common ones."""
    return _normalise_rows(binary @ sp.diags(hpo.information_content.astype(np.float32))).tocsr()


def check_index_out(out: Path) -> None:
    """Raises ValueError unless ``out`` can become the new model directory: absent, or an empty folder."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ValueError(f"{out} exists and is not an empty folder; choose another --out")


def add_indexed_cases(model: Path, out: Path, hpo: HPO, tasks: list[Task], source: Path) -> int:
    """Copies the policy model directory ``model`` to ``out`` with the cases of ``tasks`` (answers,
    current HPO ids) added to its case index; the network is not retrained. Their genes then count
    as known, and their cases are compared with new patients and cited as similar cases. Returns
    the number of cases the new index holds."""
    meta = json.loads((model / "config.json").read_text())
    if meta.get("kind") != "policy":
        raise ValueError(f"{model} is a {meta.get('kind')} model; only a policy model (the default ranker's "
                         "kind) has a case index")
    index = CaseIndex.load(model, hpo)
    held = set(index.case_ids)
    ids = Counter(t.id for t in tasks)
    twice = [i for i, n in ids.items() if n > 1]
    if twice:
        raise ValueError(f"{source}: task id {twice[0]} occurs more than once; every case needs its own id")
    clash = [i for i in ids if i in held]
    if clash:
        raise ValueError(f"{len(clash)} of the tasks are already in the case index of {model} (e.g. {clash[0]}); "
                         "give only new cases")
    check_index_out(out)
    shutil.copytree(model, out, dirs_exist_ok=True, ignore=shutil.ignore_patterns("checkpoint*"))
    bigger = index.with_cases(hpo, tasks)
    bigger.save(out)
    added = {"file": str(source), "sha256": fingerprint([source]), "cases": len(tasks),
             "genes": len({t.answer.gene for t in tasks}), "date": time.strftime("%Y-%m-%d", time.gmtime())}
    meta.setdefault("added_cases", []).append(added)
    (out / "config.json").write_text(json.dumps(meta, indent=2) + "\n")
    with open(out / "MODEL_CARD.md", "a", encoding="utf-8") as card:
        card.write(f"\n## Added cases\n{added['cases']:,} cases of {added['genes']:,} genes from `{source.name}` "
                   f"(sha256 {added['sha256']}) joined the case index on {added['date']} with `rdrft index`. "
                   "The network was not retrained; the validation metrics above predate them.\n")
    return len(bigger.case_ids)
