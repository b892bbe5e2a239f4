"""The HPO knowledge base: terms, their ancestry and information content, and gene annotations.

``HPO.load()`` reads an HPO release folder (``hp.obo``, ``phenotype.hpoa`` and either HPO's
``genes_to_phenotype.txt`` or ``genes_to_disease.txt``, from which the gene table is built: see
:mod:`rare_disease_rft.hpo_release`) once, caches the parsed arrays under the user cache (keyed
by a hash of the files) and loads that cache in well under a second afterwards. The bundled
default is named in :mod:`rare_disease_rft.resources` (``BUNDLED_HPO_RELEASE``).

Every annotation keeps the references it was curated from (:meth:`HPO.references`), so that the
knowledge of one publication can be withheld (:meth:`HPO.without_publication`) when a case from
that publication is ranked: what a new patient's ranking would have had to go on.

Terms are addressed by id everywhere in the public API; internally they are row/column indices
of sparse matrices so that rankers can score every gene at once.
"""

from __future__ import annotations

import functools
import json
import math
import os
import re
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from .genes import GeneNames, gene_names
from . import hpo_release as _release
from .hpo_release import ReleaseFiles, gene_phenotypes, read_annotations, read_obo, release_files
from .resources import BUNDLED_HPO, atomic_write_bytes, cache_dir, fingerprint, read_arrays, write_arrays

PHENOTYPIC_ABNORMALITY = "HP:0000118"
# Midpoints of the HPO frequency classes (HP:0040279 subtree).
FREQUENCY_TERMS = {
    "HP:0040280": 1.0,  # Obligate
    "HP:0040281": 0.895,  # Very frequent (80-99%)
    "HP:0040282": 0.545,  # Frequent (30-79%)
    "HP:0040283": 0.17,  # Occasional (5-29%)
    "HP:0040284": 0.025,  # Very rare (1-4%)
    "HP:0040285": 0.0,  # Excluded
}
# Used where an annotation states no frequency (a third of them); "Frequent" is the middle class.
UNKNOWN_FREQUENCY = 0.5
_CACHE_FORMAT = 8
# publications whose withheld rows are kept per process: a split has a few hundred, cases come
# paper by paper, and each entry is a handful of sparse rows
WITHHELD_CACHE_SIZE = 1024
# ASCII digits only: \d would take other scripts' digits (Arabic-Indic ٠١٢...), which name no term
_ID = re.compile(r"^\s*HP[:_]([0-9]{7})\s*$", re.IGNORECASE)


class HPOError(ValueError):
    """A term id the knowledge base cannot use; the message says which and what to do."""


def normalise_id(text: str) -> str:
    """``hp_0001250`` or `` HP:0001250 `` -> ``HP:0001250``; anything else is an :class:`HPOError`."""
    match = _ID.match(str(text))
    if not match:
        raise HPOError(f"'{text}' is not an HPO id (expected HP: followed by 7 digits 0-9, e.g. HP:0001250)")
    return f"HP:{match.group(1)}"


def is_hpo_id(text: str) -> bool:
    """Whether ``text`` is written as an HPO id (whether or not a release knows it)."""
    return _ID.match(str(text)) is not None


def parse_frequency(text: str) -> float:
    """An annotation frequency as a number in [0, 1]: ``HP:0040281``, ``3/7``, ``25%``; NaN if none."""
    text = (text or "").strip()
    if not text or text == "-":
        return math.nan
    if text in FREQUENCY_TERMS:
        return FREQUENCY_TERMS[text]
    if "/" in text:
        num, _, den = text.partition("/")
        return float(num) / float(den) if float(den) > 0 else math.nan
    if text.endswith("%"):
        return float(text[:-1]) / 100.0
    return math.nan


@dataclass(frozen=True)
class Term:
    id: str
    name: str
    synonyms: tuple[str, ...]
    parents: tuple[str, ...]
    information_content: float

    def __str__(self) -> str:
        return f"{self.id} {self.name}"


@dataclass(frozen=True)
class Resolution:
    """What became of one id a user gave: the current id, and why it differs if it does."""

    given: str
    id: str | None
    note: str | None = None  # None when the id was already current


@dataclass
class ResolvedTerms:
    ids: list[str] = field(default_factory=list)
    replaced: dict[str, str] = field(default_factory=dict)  # given -> current
    notes: list[str] = field(default_factory=list)  # one per replaced id
    unknown: dict[str, str] = field(default_factory=dict)  # given -> why it cannot be used


@dataclass(frozen=True)
class GeneAnnotation:
    """A gene and its directly annotated terms with frequencies (NaN: the source gives none)."""

    symbol: str
    hgnc_id: str
    ncbi_id: str
    terms: dict[str, float]
    diseases: tuple[str, ...]
    #: term -> what its annotations (over the gene's diseases) were curated from: PMIDs, OMIM ids, ...
    references: dict[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class AnnotationRows:
    """Some rows of an annotation view (diseases or genes x terms), recomputed: which rows, their
    direct annotations (frequency, NaN where unstated) and their closure (as in
    :attr:`HPO.gene_closure`)."""

    rows: np.ndarray
    direct: sp.csr_matrix
    closure: sp.csr_matrix


@dataclass(frozen=True)
class WithheldKnowledge:
    """The knowledge base without what one publication is the only source of: every annotation
    row (of ``phenotype.hpoa``) whose only reference it is dropped, and the disease and gene rows
    that changed recomputed from their other annotation rows.

    Information content and background frequencies are not recomputed: one paper changes the
    annotations of a handful of the ~5,000 genes, which moves a term's gene count by about one,
    and a term only that paper annotated keeps the floor count of one gene (``gene_frequency``).
    Rebuilding them would mean rebuilding every matrix for every case, to move scores in the
    third decimal.
    """

    publication: str
    #: (disease, term) annotations gone entirely: the publication was their only source
    annotations: tuple[tuple[str, str], ...]
    diseases: AnnotationRows
    genes: AnnotationRows  # the genes of those diseases


class HPO:
    """One HPO release with its gene annotations. Build with :meth:`load`."""

    def __init__(self, arrays: dict[str, np.ndarray], meta: dict):
        self.version: str = meta["version"]
        self.source: str = meta["source"]
        self.ids: list[str] = meta["ids"]
        self.names: list[str] = meta["names"]
        self.synonyms: list[list[str]] = meta["synonyms"]
        self.gene_symbols: list[str] = meta["gene_symbols"]
        self.gene_hgnc: list[str] = meta["gene_hgnc"]
        self.gene_ncbi: list[str] = meta["gene_ncbi"]
        self.disease_ids: list[str] = meta["disease_ids"]
        self.disease_names: list[str] = meta["disease_names"]
        #: publications the disease annotations cite: their case reports informed the annotations
        self.cited_pmids: frozenset[str] = frozenset(meta["cited_pmids"])
        self.disease_inheritance: list[list[str]] = meta["disease_inheritance"]
        self._alternative: dict[str, str] = meta["alternative"]
        self._obsolete: dict[str, str | None] = meta["obsolete"]
        self.index: dict[str, int] = {t: i for i, t in enumerate(self.ids)}
        self.gene_index: dict[str, int] = {g: i for i, g in enumerate(self.gene_symbols)}
        self.disease_index: dict[str, int] = {d: i for i, d in enumerate(self.disease_ids)}
        n_terms, n_genes = len(self.ids), len(self.gene_symbols)

        def sparse(name: str, shape: tuple[int, int], dtype=np.float32,
                   kind=sp.csr_matrix) -> sp.csr_matrix | sp.csc_matrix:
            return kind(
                (arrays[f"{name}_data"].astype(dtype, copy=False), arrays[f"{name}_indices"], arrays[f"{name}_indptr"]),
                shape=shape,
            )

        self.parents = sparse("parents", (n_terms, n_terms), np.bool_)
        #: terms x terms, row t marks t and every ancestor of t
        self.ancestor_matrix = sparse("ancestors", (n_terms, n_terms), np.bool_)
        #: genes x terms, direct annotations with frequency (NaN where unstated)
        self.gene_terms = sparse("gene_terms", (n_genes, n_terms))
        #: genes x terms, annotations propagated to ancestors: the highest frequency of any
        #: annotated descendant (unstated frequencies count as UNKNOWN_FREQUENCY)
        self.gene_closure = sparse("gene_closure", (n_genes, n_terms))
        #: genes x diseases the annotations came from
        self.gene_diseases = sparse("gene_diseases", (n_genes, len(self.disease_ids)), np.bool_)
        #: diseases x terms, the same two views per disease (the gene's annotations are their union)
        self.disease_terms = sparse("disease_terms", (len(self.disease_ids), n_terms))
        self.disease_closure = sparse("disease_closure", (len(self.disease_ids), n_terms))
        #: the two closures by column (CSC), as matching a patient's terms slices them: kept in the
        #: cache, as converting them took every process 15 ms each
        self.gene_closure_by_term = sparse("gene_closure_by_term", (n_genes, n_terms), kind=sp.csc_matrix)
        self.disease_closure_by_term = sparse("disease_closure_by_term", (len(self.disease_ids), n_terms),
                                           kind=sp.csc_matrix)
        self.information_content: np.ndarray = arrays["ic"]
        #: share of genes annotated with each term or a descendant (the background rate)
        self.gene_frequency: np.ndarray = arrays["gene_frequency"]
        self.phenotypic: np.ndarray = arrays["phenotypic"]  # bool per term: under HP:0000118
        # the annotation rows of phenotype.hpoa (of diseases with a gene, phenotype terms), in file
        # order: disease and current term indices, the id as annotated, frequency, references
        self._row_disease = arrays["annotation_disease"]
        self._row_term = arrays["annotation_term"]
        self._row_given_term = arrays["annotation_given_term"]
        self._row_frequency = arrays["annotation_frequency"]
        self._row_refs = sp.csr_matrix(
            (np.ones(len(arrays["annotation_refs_indices"]), bool), arrays["annotation_refs_indices"],
             arrays["annotation_refs_indptr"]), shape=(len(self._row_disease), len(meta["references"])))
        self._references: list[str] = meta["references"]
        self._withheld: OrderedDict[str, WithheldKnowledge | None] = OrderedDict()

    @functools.cached_property
    def _search_keys(self) -> list[tuple[str, str, int, bool]]:
        """(lower-cased text, text, term index, is the label): labels first, then synonyms. Built
        on the first search (a tenth of loading), not by commands that never search."""
        return [(name.lower(), name, i, True) for i, name in enumerate(self.names)] + [
            (syn.lower(), syn, i, False) for i, syns in enumerate(self.synonyms) for syn in syns
        ]

    # ---------------------------------------------------------------- loading
    @classmethod
    def load(cls, folder: str | Path | None = None) -> "HPO":
        """Loads the release in ``folder`` (default: ``RDRFT_HPO_DIR`` or the bundled one)."""
        files = release_files(release_folder(folder))
        # the cache follows the release files and the code that builds it (sessions of different
        # code share one cache folder)
        key = f"v{_CACHE_FORMAT}-{fingerprint(files.used + [Path(__file__), Path(_release.__file__)])}"
        cached = cache_dir("hpo") / key
        arrays = read_arrays(cached) if (cached / "meta.json").is_file() else None
        if arrays is not None:
            # the same files in another folder share the cache: the source is where they are now
            return cls(arrays, {**json.loads((cached / "meta.json").read_text()), "source": str(files.folder)})
        arrays, meta = _build(files)
        cached.mkdir(parents=True, exist_ok=True)
        write_arrays(cached, arrays)  # two first runs may race: each file is written whole
        atomic_write_bytes(cached / "meta.json", json.dumps(meta).encode())  # last: the entry is complete
        return cls(arrays, meta)

    # ---------------------------------------------------------------- terms
    def resolve(self, term_id: str) -> Resolution:
        """Maps an alternative or obsolete id to the current term; ``id`` is None if impossible."""
        try:
            tid = normalise_id(term_id)
        except HPOError as err:
            return Resolution(str(term_id), None, str(err))
        if tid in self.index and tid not in self._obsolete:
            return Resolution(term_id, tid, None if tid == term_id else f"{term_id} written as {tid}")
        if self._obsolete.get(tid):
            new = self._obsolete[tid]
            return Resolution(term_id, new, f"{tid} is obsolete, replaced by {new} ({self.name(new)})")
        if tid in self._alternative:
            new = self._alternative[tid]
            return Resolution(term_id, new, f"{tid} is an alternative id of {new} ({self.name(new)})")
        if tid in self._obsolete:
            return Resolution(
                term_id, None, f"{tid} is obsolete in HPO {self.version} and has no replacement; choose a current term"
            )
        return Resolution(
            term_id, None, f"{tid} is not a term of HPO release {self.version}; check the id or use a newer release"
        )

    def resolve_all(self, term_ids: list[str]) -> ResolvedTerms:
        """Resolves many ids; unknown ones are collected (with the reason), duplicates removed."""
        out = ResolvedTerms()
        for given in term_ids:
            res = self.resolve(given)
            if res.id is None:
                out.unknown[given] = res.note or f"{given} cannot be used"
                continue
            if res.note and res.id != normalise_id(given):
                out.replaced[given] = res.id
                out.notes.append(res.note)
            if res.id not in out.ids:
                out.ids.append(res.id)
        return out

    def term(self, term_id: str) -> Term:
        """The current term for an id (alternative and obsolete ids are mapped)."""
        res = self.resolve(term_id)
        if res.id is None:
            raise HPOError(res.note)
        i = self.index[res.id]
        return Term(
            id=res.id,
            name=self.names[i],
            synonyms=tuple(self.synonyms[i]),
            parents=tuple(self.ids[j] for j in self.parents[i].indices),
            information_content=float(self.information_content[i]),
        )

    def name(self, term_id: str) -> str:
        i = self.index.get(term_id)
        return self.names[i] if i is not None else term_id

    def __contains__(self, term_id: str) -> bool:
        return self.resolve(term_id).id is not None

    def __len__(self) -> int:
        return len(self.ids)

    def ancestors(self, term_id: str, include_self: bool = True) -> set[str]:
        i = self.index[self.term(term_id).id]
        found = {self.ids[j] for j in self.ancestor_indices(i)}
        return found if include_self else found - {self.ids[i]}

    def is_a(self, term_id: str, ancestor_id: str) -> bool:
        """True if ``term_id`` is ``ancestor_id`` or a descendant of it."""
        return self.term(ancestor_id).id in self.ancestors(term_id)

    def ic(self, term_id: str) -> float:
        return float(self.information_content[self.index[self.term(term_id).id]])

    def search(self, query: str, limit: int = 10) -> list[tuple[Term, str]]:
        """Terms whose label or a synonym contains every word of ``query`` (as a prefix of a word).

        Returns ``(term, matched text)`` pairs, best first: exact matches, then labels before
        synonyms, then shorter texts. An HPO id in the query finds that term.
        """
        query = query.strip()
        if not query:
            return []
        if _ID.match(query):
            res = self.resolve(query)
            return [(self.term(res.id), res.id)] if res.id else []
        lowered = query.lower()
        words = re.findall(r"\w+", lowered)
        if not words:
            return []
        best: dict[int, tuple[tuple, str]] = {}
        for low, text, i, is_label in self._search_keys:
            if not all(w in low for w in words):
                continue
            tokens = re.findall(r"\w+", low)
            if not all(any(t.startswith(w) for t in tokens) for w in words):
                continue
            key = (low != lowered, not low.startswith(words[0]), not is_label, len(low), self.ids[i])
            if i not in best or key < best[i][0]:
                best[i] = (key, text)
        ranked = sorted(best.items(), key=lambda item: item[1][0])[:limit]
        return [(self.term(self.ids[i]), text) for i, (_, text) in ranked]

    # ---------------------------------------------------------------- genes
    def gene(self, symbol: str) -> GeneAnnotation:
        """A gene's direct annotations; the symbol may be an alias or a previous symbol."""
        approved = gene_names().normalise(symbol)
        g = self.gene_index.get(approved)
        if g is None:
            raise KeyError(f"gene {symbol} has no HPO annotation in release {self.version}")
        row = self.gene_terms[g]
        diseases = self.gene_diseases[g].indices
        rows = np.concatenate([self._disease_rows(d) for d in diseases]) if len(diseases) else np.zeros(0, np.int64)
        return GeneAnnotation(
            symbol=self.gene_symbols[g],
            hgnc_id=self.gene_hgnc[g],
            ncbi_id=self.gene_ncbi[g],
            terms={self.ids[j]: float(f) for j, f in zip(row.indices, row.data)},
            diseases=tuple(self.disease_ids[d] for d in diseases),
            references={self.ids[j]: self._row_references(rows[self._row_term[rows] == j]) for j in row.indices},
        )

    def term_indices(self, term_ids: list[str]) -> np.ndarray:
        """Column indices of current term ids (callers resolve first)."""
        return np.fromiter((self.index[t] for t in term_ids), dtype=np.int64, count=len(term_ids))

    def ancestor_indices(self, term: int) -> np.ndarray:
        """Indices of a term (by index) and its ancestors: a slice of the ancestor matrix, which is
        much cheaper than indexing the sparse matrix (every patient term asks, for every ranking)."""
        m = self.ancestor_matrix
        return m.indices[m.indptr[term] : m.indptr[term + 1]]

    def closure(self, term_ids: list[str]) -> np.ndarray:
        """Indices of the terms and all their ancestors (each once)."""
        if not term_ids:
            return np.zeros(0, dtype=np.int64)
        return np.unique(np.concatenate([self.ancestor_indices(i) for i in self.term_indices(term_ids)]))

    # ---------------------------------------------------------------- references
    @functools.cached_property
    def _rows_of_disease(self) -> tuple[np.ndarray, np.ndarray]:
        """Annotation rows grouped by disease (file order within one): rows, and each disease's slice."""
        order = np.argsort(self._row_disease, kind="stable")
        counts = np.bincount(self._row_disease, minlength=len(self.disease_ids))
        return order, np.concatenate([[0], np.cumsum(counts)])

    @functools.cached_property
    def _genes_of_disease(self) -> sp.csc_matrix:
        """genes x diseases by column: a disease's genes are a slice."""
        return self.gene_diseases.tocsc()

    def _disease_rows(self, d: int) -> np.ndarray:
        order, bounds = self._rows_of_disease
        return order[bounds[d] : bounds[d + 1]]

    @functools.cached_property
    def _rows_citing_only(self) -> dict[str, np.ndarray]:
        """reference -> the annotation rows that cite it and nothing else."""
        refs = self._row_refs
        single = np.flatnonzero(np.diff(refs.indptr) == 1)
        ref_of = refs.indices[refs.indptr[single]]
        order = np.argsort(ref_of, kind="stable")
        ref_of, single = ref_of[order], single[order]
        starts = np.flatnonzero(np.diff(ref_of, prepend=-1))
        return {self._references[ref_of[a]]: single[a:b] for a, b in zip(starts, [*starts[1:], len(single)])}

    def _row_references(self, rows: np.ndarray) -> tuple[str, ...]:
        found = dict.fromkeys(self._references[j] for r in rows for j in self._row_refs.indices[
            self._row_refs.indptr[r] : self._row_refs.indptr[r + 1]])
        return tuple(found)

    def references(self, disease_id: str, term_id: str) -> tuple[str, ...]:
        """What a disease's annotation with a term was curated from (PMIDs, OMIM/ORPHA ids, ISBNs),
        over all its rows; empty if the disease is not annotated with the term."""
        d = self.disease_index.get(disease_id)
        if d is None:
            return ()
        t = self.index[self.term(term_id).id]
        rows = self._disease_rows(d)
        return self._row_references(rows[self._row_term[rows] == t])

    def without_publication(self, publication: str) -> WithheldKnowledge | None:
        """The annotations that change when ``publication`` (a reference as ``phenotype.hpoa``
        writes it, e.g. ``PMID:31675180``) is withheld; None when it is the only reference of no
        annotation row. Kept for the last :data:`WITHHELD_CACHE_SIZE` publications asked."""
        if publication in self._withheld:
            self._withheld.move_to_end(publication)
            return self._withheld[publication]
        dropped = self._rows_citing_only.get(publication)
        withheld = None if dropped is None else self._withhold(publication, dropped)
        self._withheld[publication] = withheld
        if len(self._withheld) > WITHHELD_CACHE_SIZE:
            self._withheld.popitem(last=False)
        return withheld

    def diseases_without(self, publication: str) -> AnnotationRows | None:
        """The disease rows that withholding ``publication`` changes (see :meth:`without_publication`)."""
        withheld = self.without_publication(publication)
        return withheld.diseases if withheld else None

    def genes_without(self, publication: str) -> AnnotationRows | None:
        """The gene rows that withholding ``publication`` changes (see :meth:`without_publication`)."""
        withheld = self.without_publication(publication)
        return withheld.genes if withheld else None

    def _withhold(self, publication: str, dropped: np.ndarray) -> WithheldKnowledge:
        diseases = self.recomputed_disease_rows(np.unique(self._row_disease[dropped]), dropped)
        genes = np.unique(self._genes_of_disease[:, diseases.rows].tocoo().row)
        gone = []
        for k, d in enumerate(diseases.rows):
            before = self.disease_terms.indices[self.disease_terms.indptr[d] : self.disease_terms.indptr[d + 1]]
            gone += [(self.disease_ids[d], self.ids[t]) for t in np.setdiff1d(before, diseases.direct[k].indices)]
        return WithheldKnowledge(publication, tuple(gone), diseases, self.recomputed_gene_rows(genes, diseases))

    def recomputed_disease_rows(self, diseases: np.ndarray, dropped: np.ndarray = ()) -> AnnotationRows:
        """The annotations of ``diseases`` recomputed from their annotation rows but ``dropped``, as
        HPO's table is built: per annotated id the frequency of its last row, per current term the
        highest of its ids' (with nothing dropped: the rows of :attr:`disease_terms`)."""
        dropped = set(np.asarray(dropped, dtype=np.int64).tolist())
        ann: dict[tuple[int, int], float] = {}
        for k, d in enumerate(diseases):
            last: dict[int, tuple[int, float]] = {}
            for r in self._disease_rows(int(d)).tolist():
                if r not in dropped:
                    last[int(self._row_given_term[r])] = (int(self._row_term[r]), float(self._row_frequency[r]))
            for t, f in last.values():
                _keep_highest(ann, (k, t), f)
        return AnnotationRows(np.asarray(diseases, dtype=np.int64),
                              *_annotation_matrices(ann, len(diseases), self.ancestor_matrix))

    def recomputed_gene_rows(self, genes: np.ndarray, changed: AnnotationRows | None = None) -> AnnotationRows:
        """The annotations of ``genes``, the union of their diseases' (highest frequency per term),
        those of ``changed`` diseases taken from it (with nothing changed: the rows of :attr:`gene_terms`)."""
        changed_row = {} if changed is None else {int(d): k for k, d in enumerate(changed.rows)}
        ann: dict[tuple[int, int], float] = {}
        gd = self.gene_diseases
        for k, g in enumerate(genes):
            for d in gd.indices[gd.indptr[g] : gd.indptr[g + 1]].tolist():
                m, row = (changed.direct, changed_row[d]) if d in changed_row else (self.disease_terms, d)
                span = slice(m.indptr[row], m.indptr[row + 1])
                for t, f in zip(m.indices[span].tolist(), m.data[span].tolist()):
                    _keep_highest(ann, (k, t), f)
        return AnnotationRows(np.asarray(genes, dtype=np.int64),
                              *_annotation_matrices(ann, len(genes), self.ancestor_matrix))


def release_folder(folder: str | Path | None = None) -> Path:
    """The HPO release to use: ``folder``, else ``RDRFT_HPO_DIR``, else the bundled one."""
    return Path(folder or os.environ.get("RDRFT_HPO_DIR") or BUNDLED_HPO)


def use_release(folder: str | Path) -> Path:
    """Makes ``folder`` the release that :func:`load_hpo` (and any process started from this one)
    reads, through ``RDRFT_HPO_DIR``; fails first, naming what the folder lacks."""
    folder = Path(folder).resolve()
    release_files(folder)
    os.environ["RDRFT_HPO_DIR"] = str(folder)
    return folder


def load_hpo(folder: str | Path | None = None) -> HPO:
    """The knowledge base, loaded once per process (and per folder)."""
    return _load_release(str(release_folder(folder).resolve()))


@functools.lru_cache(maxsize=4)
def _load_release(folder: str) -> HPO:
    return HPO.load(folder)


# ------------------------------------------------------------------------ building the cache
def _sparse_arrays(name: str, m: sp.csr_matrix, by_column: bool = False) -> dict[str, np.ndarray]:
    """A sparse matrix's arrays, by row (CSR) or ``by_column`` (CSC), indices sorted."""
    m = m.tocsc() if by_column else m.tocsr()
    m.sort_indices()
    return {f"{name}_data": m.data, f"{name}_indices": m.indices.astype(np.int32),
            f"{name}_indptr": m.indptr.astype(np.int64)}


def _keep_highest(table: dict[tuple[int, int], float], key: tuple[int, int], freq: float) -> None:
    """One frequency per (row, term): the highest stated one (NaN only if none is stated)."""
    old = table.get(key)
    if old is None or (not math.isnan(freq) and (math.isnan(old) or freq > old)):
        table[key] = freq


def _annotation_matrices(ann: dict[tuple[int, int], float], n_rows: int,
                         ancestor_matrix: sp.csr_matrix) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """rows x terms: the direct annotations (NaN where unstated) and their closure, where
    ``closure[r, a]`` is the highest frequency of an annotated descendant of ``a``."""
    n = ancestor_matrix.shape[0]
    keys = np.array(list(ann.keys()), dtype=np.int64).reshape(-1, 2)
    freqs = np.array(list(ann.values()), dtype=np.float32)
    direct = sp.csr_matrix((freqs, (keys[:, 0], keys[:, 1])), shape=(n_rows, n))
    filled = np.where(np.isnan(freqs), UNKNOWN_FREQUENCY, freqs)
    expanded = ancestor_matrix[keys[:, 1]].tocoo()
    r_idx = keys[expanded.row, 0]
    t_idx = expanded.col
    f_val = filled[expanded.row]
    order = np.lexsort((-f_val, t_idx, r_idx))
    r_idx, t_idx, f_val = r_idx[order], t_idx[order], f_val[order]
    first = np.ones(len(r_idx), bool)
    first[1:] = (r_idx[1:] != r_idx[:-1]) | (t_idx[1:] != t_idx[:-1])
    # zero frequencies (HP:0040285 "excluded") must survive as explicit entries
    closure = sp.csr_matrix((np.maximum(f_val[first], 1e-6), (r_idx[first], t_idx[first])), shape=(n_rows, n))
    return direct, closure


def _build(files: ReleaseFiles) -> tuple[dict, dict]:
    obo = read_obo(files.ontology)
    annotations = read_annotations(files.annotations)
    table = gene_phenotypes(files, annotations, {t["id"]: t["name"] for t in obo["terms"]})
    live = [t for t in obo["terms"] if not t["obsolete"]]
    ids = [t["id"] for t in live]
    index = {t: i for i, t in enumerate(ids)}
    n = len(ids)
    alternative = {alt: t["id"] for t in live for alt in t["alt"]}
    obsolete: dict[str, str | None] = {}
    for t in obo["terms"]:
        if t["obsolete"]:
            target = t["replaced_by"] or (t["consider"][0] if len(t["consider"]) == 1 else None)
            obsolete[t["id"]] = target
            for alt in t["alt"]:
                obsolete.setdefault(alt, target)
    # a replacement may itself be an alternative id; point straight at the live term
    obsolete = {k: (alternative.get(v, v) if v else None) for k, v in obsolete.items()}
    obsolete = {k: (v if v in index else None) for k, v in obsolete.items()}

    rows, cols = [], []
    for t in live:
        for p in t["is_a"]:
            p = alternative.get(p, p)
            if p in index:
                rows.append(index[t["id"]])
                cols.append(index[p])
    parents = sp.csr_matrix((np.ones(len(rows), bool), (rows, cols)), shape=(n, n))

    # ancestors by walking the DAG from the root down (parents before children)
    parent_lists = [parents[i].indices for i in range(n)]
    ancestors: list[set[int] | None] = [None] * n

    def ancestors_of(i: int) -> set[int]:
        stack = [i]
        while stack:
            j = stack[-1]
            pending = [p for p in parent_lists[j] if ancestors[p] is None]
            if pending:
                stack.extend(pending)
                continue
            stack.pop()
            if ancestors[j] is None:
                acc = {j}
                for p in parent_lists[j]:
                    acc |= ancestors[p]
                ancestors[j] = acc
        return ancestors[i]

    a_rows, a_cols = [], []
    for i in range(n):
        anc = ancestors_of(i)
        a_rows.extend([i] * len(anc))
        a_cols.extend(anc)
    ancestor_matrix = sp.csr_matrix((np.ones(len(a_rows), bool), (a_rows, a_cols)), shape=(n, n))
    phenotypic = np.asarray(ancestor_matrix[:, index[PHENOTYPIC_ABNORMALITY]].todense()).ravel().astype(bool)

    # gene annotations: symbols are normalised through HGNC by NCBI gene id
    names: GeneNames = gene_names()
    gene_rows: dict[str, int] = {}
    gene_symbols, gene_hgnc, gene_ncbi = [], [], []
    disease_index: dict[str, int] = {}
    ann: dict[tuple[int, int], float] = {}
    disease_ann: dict[tuple[int, int], float] = {}
    gd: set[tuple[int, int]] = set()

    def current_index(term: str) -> int | None:
        """The index of the live phenotype term an annotated id stands for (None: not usable)."""
        term = alternative.get(term, term)
        term = obsolete.get(term, term) if term in obsolete else term
        if term not in index or not phenotypic[index[term]]:
            return None  # inheritance modes, onsets and modifiers say nothing about the phenotype
        return index[term]

    for row in table:
        symbol, ncbi = row.gene_symbol, row.ncbi_gene_id
        if symbol in ("", "-"):
            continue
        hgnc = names.by_entrez(ncbi)
        symbol = hgnc.symbol if hgnc else names.normalise(symbol)
        t = current_index(row.hpo_id)
        if t is None:
            continue
        if symbol not in gene_rows:
            gene_rows[symbol] = len(gene_symbols)
            gene_symbols.append(symbol)
            gene_hgnc.append(hgnc.hgnc_id if hgnc else "")
            gene_ncbi.append(ncbi)
        g = gene_rows[symbol]
        freq = parse_frequency(row.frequency)
        _keep_highest(ann, (g, t), freq)
        if row.disease_id:
            d = disease_index.setdefault(row.disease_id, len(disease_index))
            gd.add((g, d))
            _keep_highest(disease_ann, (d, t), freq)
    n_genes = len(gene_symbols)
    gene_terms, closure = _annotation_matrices(ann, n_genes, ancestor_matrix)
    disease_terms, disease_closure = _annotation_matrices(disease_ann, len(disease_index), ancestor_matrix)

    counts = np.asarray((closure > 0).sum(axis=0)).ravel()
    gene_frequency = np.maximum(counts, 1) / max(n_genes, 1)
    ic = -np.log(gene_frequency)

    disease_names: dict[str, str] = {}
    cited: set[str] = set()
    # every annotation row of a disease with a gene, in file order, with its references: what
    # withholding one publication's knowledge recomputes a disease's annotations from
    rows: list[tuple[int, int, int, float]] = []  # disease, term, annotated id (its digits), frequency
    row_refs: list[tuple[str, ...]] = []
    inheritance: dict[str, list[str]] = {}
    for a in annotations:
        if a.disease_name:
            disease_names.setdefault(a.disease_id, a.disease_name)
        if a.aspect == "I" and not a.qualifier and a.hpo_id in index:
            modes = inheritance.setdefault(a.disease_id, [])
            if a.hpo_id not in modes:
                modes.append(a.hpo_id)
        cited.update(ref for ref in a.references if ref.startswith("PMID:"))
        d = disease_index.get(a.disease_id)
        t = current_index(a.hpo_id) if d is not None else None
        if t is not None:
            rows.append((d, t, int(a.hpo_id[3:]), parse_frequency(a.frequency)))
            row_refs.append(a.references)
    references = sorted({ref for refs in row_refs for ref in refs})
    ref_index = {ref: i for i, ref in enumerate(references)}
    row_table = np.array(rows, dtype=np.float64).reshape(-1, 4)
    disease_ids = sorted(disease_index, key=disease_index.get)
    dg = np.array(sorted(gd), dtype=np.int64).reshape(-1, 2)
    gene_diseases = sp.csr_matrix((np.ones(len(dg), bool), (dg[:, 0], dg[:, 1])), shape=(n_genes, len(disease_ids)))

    arrays = {
        **_sparse_arrays("parents", parents),
        **_sparse_arrays("ancestors", ancestor_matrix),
        **_sparse_arrays("gene_terms", gene_terms),
        **_sparse_arrays("gene_closure", closure),
        **_sparse_arrays("gene_diseases", gene_diseases),
        **_sparse_arrays("disease_terms", disease_terms),
        **_sparse_arrays("disease_closure", disease_closure),
        **_sparse_arrays("gene_closure_by_term", closure, by_column=True),
        **_sparse_arrays("disease_closure_by_term", disease_closure, by_column=True),
        "ic": ic.astype(np.float32),
        "gene_frequency": gene_frequency.astype(np.float32),
        "phenotypic": phenotypic,
        "annotation_disease": row_table[:, 0].astype(np.int32),
        "annotation_term": row_table[:, 1].astype(np.int32),
        "annotation_given_term": row_table[:, 2].astype(np.int32),
        "annotation_frequency": row_table[:, 3].astype(np.float32),
        "annotation_refs_indptr": np.cumsum([0] + [len(r) for r in row_refs], dtype=np.int64),
        "annotation_refs_indices": np.array([ref_index[ref] for refs in row_refs for ref in refs], dtype=np.int32),
    }
    meta = {
        "version": obo["version"],
        "source": str(files.folder),
        "files": [p.name for p in files.used],
        "ids": ids,
        "names": [t["name"] for t in live],
        "synonyms": [t["synonyms"] for t in live],
        "alternative": alternative,
        "obsolete": obsolete,
        "gene_symbols": gene_symbols,
        "gene_hgnc": gene_hgnc,
        "gene_ncbi": gene_ncbi,
        "disease_ids": disease_ids,
        "disease_names": [disease_names.get(d, d) for d in disease_ids],
        #: modes of inheritance (HPO ids) per disease, as phenotype.hpoa states them
        "disease_inheritance": [inheritance.get(d, []) for d in disease_ids],
        "cited_pmids": sorted(cited),
        "references": references,
    }
    return arrays, meta
