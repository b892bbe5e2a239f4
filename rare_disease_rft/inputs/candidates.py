"""Candidate genes from sequencing: a gene list (a panel, or the genes that carry rare variants) or
a VCF annotated by VEP (``CSQ``) or snpEff (``ANN``), and a ranking restricted to them.

Every gene a user names stays a candidate: names HGNC does not know are kept as given, with a
note, and candidates the knowledge base cannot rank are listed last with the reason. Per gene the
variants the VCF holds (position, alleles, consequence, impact, the sample's genotype) are kept so
that an explanation can show them.
"""

from __future__ import annotations

import csv
import dataclasses
import gzip
import io
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

import numpy as np

from ..genes import GeneNames, gene_names

if TYPE_CHECKING:  # the input layer imports no ranker: a Ranking is only passed through
    from ..rankers.base import Ranking

#: why a candidate is listed after every ranked gene
NOT_IN_KNOWLEDGE_BASE = "not in the knowledge base: no HPO annotation and no published case"
#: the impact classes VEP and snpEff share, most severe first
IMPACTS = ("HIGH", "MODERATE", "LOW", "MODIFIER")
#: annotations that name the genes around a variant, not a gene it falls in
INTERGENIC = frozenset({"intergenic_variant", "intergenic_region"})
#: column names that hold the symbols of a gene table
GENE_COLUMNS = ("gene", "symbol", "gene_symbol", "hgnc_symbol", "gene_name")
_TOKEN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]*$")
_HGNC_ID = re.compile(r"^HGNC:\d+$", re.IGNORECASE)
_HPO_ID = re.compile(r"^HP:\d{7}$", re.IGNORECASE)


class CandidateError(ValueError):
    """Candidate genes that cannot be read; the message names the file (and line) and what to do."""


@dataclass(frozen=True)
class Variant:
    """One alternate allele of a VCF record in a gene, as its most severe annotation describes it."""

    chrom: str
    pos: int
    ref: str
    alt: str
    consequence: str  # Sequence Ontology terms joined by "&", as VEP and snpEff write them
    impact: str  # one of IMPACTS, or "" when the annotation has none
    genotype: str | None = None  # the sample's GT ("0/1", "1|0", "./."); None in a VCF without samples
    hgvs_c: str = ""
    hgvs_p: str = ""
    filter: str = ""  # the record's FILTER ("PASS", "LowQual"); "" when unset

    def describe(self) -> str:
        """One line for a clinician: ``chr2:166011003 C>T missense_variant (MODERATE) ... genotype 0/1``."""
        parts = [f"{self.chrom}:{self.pos} {self.ref}>{self.alt}", self.consequence or "unannotated"]
        if self.impact:
            parts[-1] += f" ({self.impact})"
        parts += [h for h in (self.hgvs_c, self.hgvs_p) if h]
        if self.genotype is not None:
            parts.append(f"genotype {self.genotype}")
        if self.filter and self.filter != "PASS":
            parts.append(f"FILTER {self.filter}")
        return ", ".join(parts)

    def to_json(self) -> dict:
        return {"chrom": self.chrom, "pos": self.pos, "ref": self.ref, "alt": self.alt,
                "consequence": self.consequence, "impact": self.impact, "genotype": self.genotype,
                "hgvs_c": self.hgvs_c, "hgvs_p": self.hgvs_p, "filter": self.filter}


@dataclass
class Candidate:
    """A candidate gene: the approved HGNC symbol (or the name as given when HGNC does not know it)."""

    gene: str
    hgnc_id: str | None
    given: list[str] = field(default_factory=list)  # the names the list or VCF used for it
    variants: list[Variant] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"gene": self.gene, "hgnc_id": self.hgnc_id, "given": self.given,
                "variants": [v.to_json() for v in self.variants]}


@dataclass
class Candidates:
    """Candidate genes in the order the source first names them, and what reading them noted."""

    source: str  # the file, or "gene list" for symbols given on the command line
    genes: list[Candidate] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def symbols(self) -> list[str]:
        return [c.gene for c in self.genes]

    def get(self, gene: str) -> Candidate | None:
        return next((c for c in self.genes if c.gene == gene), None)

    def __len__(self) -> int:
        return len(self.genes)


class _Collector:
    """Builds :class:`Candidates`: merges the names of one gene and notes every name it had to map."""

    def __init__(self, source: str, names: GeneNames):
        self.result = Candidates(source)
        self.names = names
        self._by_gene: dict[str, Candidate] = {}
        self._by_name: dict[tuple[str, str], Candidate] = {}  # a VCF names one gene in many records
        self._noted: set[str] = set()

    def add(self, name: str, gene_id: str = "") -> Candidate:
        """The candidate a name (symbol, alias, previous symbol, HGNC or Ensembl id) stands for;
        ``gene_id`` (an annotation's Ensembl id) is used where the name is missing or unknown."""
        known = self._by_name.get((name, gene_id))
        if known is not None:
            return known
        gene = self._lookup(name) or (self._lookup(gene_id) if gene_id else None)
        label = name or gene_id
        if gene is None:
            symbol, hgnc_id = label, None
            self._note(label, f"{label} is not an HGNC symbol, alias, previous symbol or gene id; "
                              "kept as a candidate under that name")
        else:
            symbol, hgnc_id = gene.symbol, gene.hgnc_id
            if label.upper() != symbol.upper():
                how = "the annotation names the gene by its Ensembl id only" if not name else "HGNC's approved symbol"
                self._note(label, f"{label} -> {symbol} ({how})")
        candidate = self._by_gene.get(symbol.upper())
        if candidate is None:
            candidate = self._by_gene[symbol.upper()] = Candidate(symbol, hgnc_id)
            self.result.genes.append(candidate)
        if label not in candidate.given:
            candidate.given.append(label)
        self._by_name[(name, gene_id)] = candidate
        return candidate

    def _lookup(self, name: str):
        return self.names.lookup(name)

    def _note(self, key: str, note: str) -> None:
        if key not in self._noted:
            self._noted.add(key)
            self.result.notes.append(note)


# ----------------------------------------------------------------------------- gene lists
def read_gene_list(spec: str, names: GeneNames | None = None) -> Candidates:
    """``--genes``: a file (one or more symbols a line, ``#`` comments; or a CSV/TSV table with a
    gene/symbol column) or, when no such file exists, comma-separated symbols."""
    path = Path(spec)
    if path.is_file():
        try:
            text = path.read_text(encoding="utf-8-sig")
        except UnicodeDecodeError:
            raise CandidateError(f"{path}: not a text file; give one gene symbol a line") from None
        return parse_gene_list(text, str(path), names)
    if path.suffix.lower() in (".txt", ".tsv", ".csv", ".list") or "/" in spec:
        raise CandidateError(f"gene list file {spec} does not exist")
    return parse_gene_list(spec.replace(",", "\n"), "gene list", names)


def parse_gene_list(text: str, source: str, names: GeneNames | None = None) -> Candidates:
    """Gene names from the text of a list or table; raises :class:`CandidateError` for a token
    that cannot be a gene name, naming its line, and for a list that names no gene."""
    collect = _Collector(source, names or gene_names())
    lines = [(n, line.split("#", 1)[0].strip()) for n, line in enumerate(text.splitlines(), 1)]
    lines = [(n, line) for n, line in lines if line]
    column = _gene_column(lines[0][1]) if lines else None
    if column is not None:
        delimiter = "\t" if "\t" in lines[0][1] else ","
        rows = csv.reader(io.StringIO("\n".join(line for _, line in lines[1:])), delimiter=delimiter)
        entries = [(n, [row[column].strip()] if column < len(row) else []) for (n, _), row in zip(lines[1:], rows)]
    else:
        entries = [(n, re.split(r"[\s,;]+", line)) for n, line in lines]
    for number, tokens in entries:
        for token in filter(None, tokens):
            where = f"{source}, line {number}" if source != "gene list" else source
            if _HPO_ID.match(token):
                raise CandidateError(f"{where}: {token} is an HPO term, not a gene; give gene symbols like SCN1A")
            if not (_TOKEN.match(token) or _HGNC_ID.match(token)):
                raise CandidateError(f"{where}: '{token}' is not a gene symbol (letters, digits, '-', '.'), "
                                     "nor an HGNC or Ensembl gene id")
            collect.add(token)
    if not collect.result.genes:
        raise CandidateError(f"{source} names no gene; give gene symbols like SCN1A,STXBP1 or a file of them")
    return collect.result


def _gene_column(header: str) -> int | None:
    """The index of the gene column when the first line is a CSV/TSV header, else None."""
    if "\t" not in header and "," not in header:
        return None
    cells = [c.strip().strip('"').lower() for c in re.split(r"[\t,]", header)]
    return next((cells.index(name) for name in GENE_COLUMNS if name in cells), None)


# ----------------------------------------------------------------------------- VCF
@dataclass(frozen=True)
class AnnotationFormat:
    """Where an annotation (``CSQ`` of VEP, ``ANN`` of snpEff) holds what we read, per its header."""

    tag: str
    annotator: str
    fields: tuple[str, ...]
    allele: int
    symbol: int | None
    gene_id: int | None
    consequence: int | None
    impact: int | None
    hgvs_c: int | None
    hgvs_p: int | None

    @classmethod
    def from_header(cls, tag: str, description: str, where: str) -> "AnnotationFormat":
        if tag == "CSQ":  # VEP: '... Format: Allele|Consequence|IMPACT|SYMBOL|Gene|...'
            annotator, names = "VEP", ("Allele", "SYMBOL", "Gene", "Consequence", "IMPACT", "HGVSc", "HGVSp")
            listed = description.split("Format:", 1)[1] if "Format:" in description else ""
        else:  # snpEff: "Functional annotations: 'Allele | Annotation | Annotation_Impact | Gene_Name | ...'"
            annotator = "snpEff"
            names = ("Allele", "Gene_Name", "Gene_ID", "Annotation", "Annotation_Impact", "HGVS.c", "HGVS.p")
            listed = description.split(":", 1)[1] if ":" in description else ""
        fields = tuple(f.strip(" '\"") for f in listed.strip(" '\"").split("|"))
        position = {name.lower(): i for i, name in enumerate(fields)}
        allele, symbol, gene_id, consequence, impact, hgvs_c, hgvs_p = (position.get(n.lower()) for n in names)
        if allele is None or (symbol is None and gene_id is None):
            raise CandidateError(f"{where}: the header's {tag} description does not list the {annotator} fields "
                                 f"{names[0]} and {names[1]} or {names[2]} ('{description[:120]}'); "
                                 "was the file annotated by another tool?")
        return cls(tag, annotator, fields, allele, symbol, gene_id, consequence, impact, hgvs_c, hgvs_p)

    def value(self, parts: list[str], index: int | None) -> str:
        return parts[index].strip() if index is not None and index < len(parts) else ""


def read_vcf(path: str | Path, sample: str | None = None, min_impact: str | None = None,
             names: GeneNames | None = None) -> Candidates:
    """``--vcf``: the genes a VEP- or snpEff-annotated VCF (plain or bgzipped) puts variants in.

    Only alleles the sample carries count (the first sample unless ``sample`` names one; every
    allele in a VCF without samples); intergenic annotations name no candidate; ``min_impact``
    (``HIGH``, ``MODERATE``, ``LOW``) drops annotations below it. Raises :class:`CandidateError`
    with a one-line reason for a file that is not an annotated VCF or holds a malformed line.
    """
    import pysam  # a compiled extension: loaded only where a VCF is read

    path = Path(path)
    if not path.is_file():
        raise CandidateError(f"VCF file {path} does not exist or is not a file")
    if min_impact is not None and min_impact.upper() not in IMPACTS:
        raise CandidateError(f"min_impact '{min_impact}' is not one of {', '.join(IMPACTS)}")
    allowed = IMPACTS[: IMPACTS.index(min_impact.upper()) + 1] if min_impact else IMPACTS
    collect = _Collector(str(path), names or gene_names())
    counts = {"not carried": 0, "no gene": 0, "below impact": 0}
    previous_verbosity = pysam.set_verbosity(0)  # htslib's own messages would go to stderr unasked
    try:
        try:
            vcf = pysam.VariantFile(str(path))
        except (OSError, ValueError) as err:
            raise CandidateError(f"{path}: not a VCF file that can be read ({err}); "
                                 "give a VCF (.vcf or bgzipped .vcf.gz)") from None
        with vcf:
            fmt = _annotation_format(vcf.header, path)
            sample = _sample(list(vcf.header.samples), sample, path, collect.result.notes)
            records = 0
            try:
                for record in vcf:
                    records += 1
                    _read_record(record, fmt, sample, allowed, collect, counts)
            except (OSError, ValueError) as err:
                raise CandidateError(_malformed_line(path, records, err)) from None
    finally:
        pysam.set_verbosity(previous_verbosity)
    notes = collect.result.notes
    notes.insert(0, f"{path}: {records} records annotated by {fmt.annotator} ({fmt.tag}); "
                    f"{len(collect.result.genes)} candidate genes")
    if counts["not carried"]:
        notes.append(f"{_plural(counts['not carried'], 'alternate allele')} that {sample} does not carry "
                     "left out")
    if counts["no gene"]:
        notes.append(f"{_plural(counts['no gene'], 'record')} in no gene (intergenic): no candidate")
    if counts["below impact"]:
        notes.append(f"{_plural(counts['below impact'], 'variant')} whose annotations in a gene are all below "
                     f"{min_impact.upper()} impact left out")
    if not collect.result.genes:
        raise CandidateError(f"{path}: no variant{f' of {sample}' if sample else ''} falls in an annotated gene "
                             f"({records} records); there is no candidate to restrict the ranking to")
    return collect.result


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _annotation_format(header, path: Path) -> AnnotationFormat:
    for tag in ("CSQ", "ANN"):
        if tag in header.info:
            return AnnotationFormat.from_header(tag, header.info[tag].description or "", str(path))
    raise CandidateError(f"{path}: the header declares no CSQ (VEP) or ANN (snpEff) annotation; annotate the "
                         "VCF with VEP or snpEff first, or give the genes with --genes")


def _sample(samples: list[str], wanted: str | None, path: Path, notes: list[str]) -> str | None:
    if wanted is not None:
        if wanted not in samples:
            listed = ", ".join(samples) or "none"
            raise CandidateError(f"{path}: no sample '{wanted}' in the VCF (its samples: {listed})")
        return wanted
    if len(samples) > 1:
        notes.append(f"{path} holds {len(samples)} samples ({', '.join(samples)}); the genotypes used are "
                     f"those of the first, {samples[0]}")
    return samples[0] if samples else None


def _vep_alleles(ref: str, alts: tuple[str, ...]) -> list[str]:
    """The allele strings VEP writes in CSQ: without the first base when every allele shares it
    (indels), ``-`` for nothing left."""
    if all(a[:1] == ref[:1] for a in alts) and any(len(a) != len(ref) for a in alts):
        return [a[1:] or "-" for a in alts]
    return list(alts)


def _read_record(record, fmt: AnnotationFormat, sample: str | None, allowed: tuple[str, ...],
                 collect: _Collector, counts: dict) -> None:
    alts = tuple(record.alts or ())
    if not alts:
        return
    genotype, carried = None, set(range(1, len(alts) + 1))
    if sample is not None and "GT" in record.format:
        call = record.samples[sample]
        alleles = call.get("GT") or ()
        genotype = ("|" if call.phased else "/").join("." if a is None else str(a) for a in alleles) or None
        if any(a is not None for a in alleles):  # a missing call (./.) cannot rule an allele out
            carried = {a for a in alleles if a}
    by_allele: dict[str, int] = {}
    for i, (alt, vep) in enumerate(zip(alts, _vep_alleles(record.ref, alts)), 1):
        by_allele.setdefault(alt, i)
        by_allele.setdefault(vep, i)
    entries = record.info.get(fmt.tag) or ()
    if isinstance(entries, str):  # a header that declares Number=1
        entries = entries.split(",")
    best: dict[tuple[str, int], tuple[int, Variant, tuple[str, str]]] = {}
    low: set[tuple[str, int]] = set()
    in_gene = False
    for entry in entries:
        parts = entry.split("|")
        consequence = fmt.value(parts, fmt.consequence)
        name, gene_id = fmt.value(parts, fmt.symbol), fmt.value(parts, fmt.gene_id)
        if not (name or gene_id) or set(consequence.split("&")) & INTERGENIC:
            continue
        in_gene = True
        allele = by_allele.get(fmt.value(parts, fmt.allele), 1 if len(alts) == 1 else None)
        if allele is None or allele not in carried:
            continue
        key = (name or gene_id, allele)
        impact = fmt.value(parts, fmt.impact).upper()
        if impact and impact not in allowed:
            low.add(key)
            continue
        severity = IMPACTS.index(impact) if impact in IMPACTS else len(IMPACTS)
        if key not in best or severity < best[key][0]:
            variant = Variant(record.chrom, record.pos, record.ref, alts[allele - 1], consequence, impact, genotype,
                              fmt.value(parts, fmt.hgvs_c), fmt.value(parts, fmt.hgvs_p),
                              ";".join(record.filter.keys()))
            best[key] = (severity, variant, (name, gene_id))
    if not in_gene:
        counts["no gene"] += 1
        return
    counts["not carried"] += len(alts) - len(carried & set(range(1, len(alts) + 1)))
    counts["below impact"] += len(low - best.keys())
    # two names of one gene (an alias and its symbol) in one record: the allele once, most severe
    per_gene: dict[tuple[str, str], tuple[int, Variant, Candidate]] = {}
    for severity, variant, given in best.values():
        candidate = collect.add(*given)
        key = (candidate.gene, variant.alt)
        if key not in per_gene or severity < per_gene[key][0]:
            per_gene[key] = (severity, variant, candidate)
    for _, variant, candidate in per_gene.values():
        candidate.variants.append(variant)


def _malformed_line(path: Path, good_records: int, err: Exception) -> str:
    """Names the line after the last record read, with what is wrong with it where we can tell."""
    with open(path, "rb") as raw:
        opener = gzip.open if raw.read(2) == b"\x1f\x8b" else open  # bgzip is gzip to Python
    number, line = 0, ""
    with opener(path, "rt", encoding="utf-8", errors="replace") as handle:
        seen = 0
        for number, line in enumerate(handle, 1):
            if line.startswith("#") or not line.strip():
                continue
            seen += 1
            if seen > good_records:
                break
    columns = line.rstrip("\n").split("\t")
    if len(columns) < 8:
        reason = f"{len(columns)} tab-separated columns where a VCF record has at least 8"
    elif not columns[1].isdigit():
        reason = f"POS '{columns[1]}' is not a position"
    else:
        reason = f"htslib cannot parse it ({err})"
    return f"{path}, line {number}: not a valid VCF record: {reason}; fix or remove that line"


# ----------------------------------------------------------------------------- ranking
def restrict_ranking(ranking: Ranking, candidates: Candidates | Iterable[str]) -> Ranking:
    """The ranking of the candidates only, best first, then the candidates the ranking does not
    hold (the knowledge base knows them not), in the order given, with NaN scores and their reason
    in ``extra["unranked"]``. Probabilities stay the ranker's: they are calibrated over all genes,
    not renormalised on the assumption that the causal gene is a candidate."""
    names = gene_names()
    wanted = candidates.symbols() if isinstance(candidates, Candidates) else list(candidates)
    keys = {names.normalise(g): g for g in wanted}
    positions = [i for i, g in enumerate(ranking.genes) if names.normalise(g) in keys]
    ranked = {names.normalise(ranking.genes[i]) for i in positions}
    unranked = [g for key, g in keys.items() if key not in ranked]
    nan = np.full(len(unranked), np.nan)
    index = np.asarray(positions, dtype=int)
    probabilities = None
    if ranking.probabilities is not None:
        probabilities = np.concatenate([np.asarray(ranking.probabilities, dtype=float)[index], nan])
    return dataclasses.replace(
        ranking,
        genes=[ranking.genes[i] for i in positions] + unranked,
        scores=np.concatenate([np.asarray(ranking.scores, dtype=float)[index], nan]),
        probabilities=probabilities,
        extra={**ranking.extra, "unranked": {g: NOT_IN_KNOWLEDGE_BASE for g in unranked}},
    )
