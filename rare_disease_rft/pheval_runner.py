"""The PhEval runner: ranks every phenopacket of a PhEval corpus with a MODEL and writes PhEval's
gene results, so that a benchmark compares us beside Exomiser, LIRICAL, Phen2Gene or GADO.

PhEval (pheval >= 0.7) finds the runner through the ``pheval.plugins`` entry point and calls
``prepare``, ``run`` and ``post_process``. ``run`` writes one raw result per phenopacket
(``raw_results/<phenopacket stem>.tsv``: rank, gene_symbol, gene_identifier, score, every gene the
model ranks); ``post_process`` hands each to pheval's ``generate_gene_result``, which writes
``pheval_gene_results/<stem>-gene_result.parquet`` and marks the causal gene of the phenopacket.

The runner's ``config.yaml`` (in ``--input-dir``) names the model::

    tool: rare-disease-rft
    tool_version: 0.1.0
    variant_analysis: false
    gene_analysis: true
    disease_analysis: false
    tool_specific_configuration_options:
      model: default        # phenomizer, likelihood, default, or a model directory
      batch_size: 32        # cases ranked together (rank_many)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
from pheval.post_processing.post_processing import SortOrder, generate_gene_result
from pheval.runners.runner import PhEvalRunner
from pheval.utils.logger import get_logger

# The phenopacket reader; it moves to rare_disease_rft.inputs.phenopackets (a one-line change here).
from rare_disease_rft.inputs.phenopackets import ConversionReport, PhenopacketError, load_phenopacket, read_patient

from .genes import gene_names
from .hpo import load_hpo
from .rankers import Case, Ranker, Ranking
from .registry import load_ranker

logger = get_logger()


@dataclass(frozen=True)
class RunnerSettings:
    """``tool_specific_configuration_options`` of the runner's config.yaml, with their defaults."""

    model: str = "default"
    batch_size: int = 32
    #: ``tied`` (default): tied scores stay tied and PhEval ranks them at the worst place of their tie,
    #: as it does for every other tool, so comparisons are fair; ``ranker_order``: ties are broken in
    #: the ranker's order (alphabetical), reproducing the ranks ``rdrft benchmark`` grades
    ties: str = "tied"

    @classmethod
    def from_options(cls, options, input_dir: Path) -> "RunnerSettings":
        options = dict(options or {})
        unknown = sorted(set(options) - {"model", "batch_size", "ties"})
        if unknown:
            raise ValueError(f"{input_dir}/config.yaml: unknown tool_specific_configuration_options "
                             f"{', '.join(unknown)} (known: model, batch_size, ties)")
        ties = str(options.get("ties") or cls.ties)
        if ties not in ("tied", "ranker_order"):
            raise ValueError(f"{input_dir}/config.yaml: ties must be tied or ranker_order, got {ties!r}")
        model = str(options.get("model") or cls.model)
        # a model directory may be given relative to the input dir, where PhEval keeps a tool's data
        if (input_dir / model / "config.json").is_file():
            model = str(input_dir / model)
        batch_size = options.get("batch_size", cls.batch_size)
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"{input_dir}/config.yaml: batch_size must be a positive integer, got {batch_size!r}")
        return cls(model, batch_size, ties)


def pheval_scores(scores: np.ndarray, break_ties: bool = False) -> np.ndarray:
    """The ranker's scores as float64; genes without a score below every scored one.

    PhEval gives tied genes the worst rank of their tie. With ``break_ties`` each tied score steps
    one float64 ulp below the previous one, so PhEval's ranks are the ranker's order (the values
    stay the ranker's to 15 digits): the ranks ``rdrft benchmark`` grades.
    """
    out = np.asarray(scores, dtype=np.float64).copy()
    finite = np.isfinite(out)
    if not finite.all():  # no score at all: below every scored gene
        out[~finite] = (out[finite].min() if finite.any() else 0.0) - 1.0
    if not break_ties:
        return out
    for i in range(1, len(out)):
        if out[i] >= out[i - 1]:
            out[i] = np.nextafter(out[i - 1], -np.inf)
    return out


def gene_result(ranking: Ranking, break_ties: bool = False) -> pl.DataFrame:
    """A ranking as PhEval's gene result columns (gene_symbol, gene_identifier = HGNC id, score)."""
    names = gene_names()
    identifiers = []
    for symbol in ranking.genes:
        gene = names.get(symbol)
        identifiers.append(gene.hgnc_id if gene else "")
    return pl.DataFrame({
        "rank": np.arange(1, len(ranking.genes) + 1),
        "gene_symbol": [str(g) for g in ranking.genes],
        "gene_identifier": identifiers,
        "score": pheval_scores(ranking.scores, break_ties),
    }, schema={"rank": pl.Int64, "gene_symbol": pl.String, "gene_identifier": pl.String, "score": pl.Float64})


def read_case(path: Path, hpo) -> Case:
    """A phenopacket file -> the case a ranker sees; ValueError naming the file when it has none."""
    try:
        packet = load_phenopacket(path.read_bytes())
        if "proband" in packet:  # a Family: the proband is the patient
            packet = packet["proband"] or {}
        patient = read_patient(packet, hpo, ConversionReport())
    except PhenopacketError as err:
        raise ValueError(f"{path}: {err}") from None
    if not patient.present:
        raise ValueError(f"{path}: no present phenotype (only excluded or unknown terms)")
    return Case(tuple(patient.present), tuple(patient.excluded), patient.sex, patient.age_years)


def rank_corpus(ranker: Ranker, phenopacket_dir: Path, out_dir: Path, batch_size: int = 32,
                break_ties: bool = False) -> dict:
    """Ranks every ``*.json`` phenopacket of ``phenopacket_dir`` into ``out_dir/<stem>.tsv``;
    returns ``{"ranked": n, "skipped": [{"file", "reason"}]}`` (a bad file never stops the run)."""
    hpo = load_hpo()
    files = sorted(p for p in phenopacket_dir.iterdir() if p.is_file() and p.suffix.lower() == ".json")
    cases: list[tuple[Path, Case]] = []
    skipped = []
    for path in files:
        try:
            cases.append((path, read_case(path, hpo)))
        except ValueError as err:
            skipped.append({"file": str(path), "reason": str(err)})
    out_dir.mkdir(parents=True, exist_ok=True)
    for start in range(0, len(cases), batch_size):
        batch = cases[start : start + batch_size]
        for (path, _), ranking in zip(batch, ranker.rank_many([case for _, case in batch])):
            gene_result(ranking, break_ties).write_csv(out_dir / f"{path.stem}.tsv", separator="\t")
    return {"ranked": len(cases), "skipped": skipped}


@dataclass
class RdrftPhEvalRunner(PhEvalRunner):
    """``pheval run --runner rdrftphevalrunner``: rare-disease-rft's rankers under PhEval."""

    input_dir: Path
    testdata_dir: Path
    tmp_dir: Path
    output_dir: Path
    config_file: Path
    version: str

    @property
    def phenopacket_dir(self) -> Path:
        return Path(self.testdata_dir) / "phenopackets"

    def prepare(self) -> None:
        """Checks the corpus, the settings and the model before any case is ranked."""
        if not self.phenopacket_dir.is_dir():
            raise FileNotFoundError(f"{self.phenopacket_dir} does not exist; a PhEval corpus keeps its "
                                    "phenopackets in <testdata-dir>/phenopackets")
        self.settings = RunnerSettings.from_options(self.input_dir_config.tool_specific_configuration_options,
                                                    Path(self.input_dir))
        self.ranker = load_ranker(self.settings.model)

    def run(self) -> None:
        report = rank_corpus(self.ranker, self.phenopacket_dir, self.raw_results_dir, self.settings.batch_size,
                             break_ties=self.settings.ties == "ranker_order")
        for skip in report["skipped"]:
            logger.warning(f"skipped {skip['file']}: {skip['reason']}")
        logger.info(f"{self.ranker.name}: {report['ranked']} phenopackets ranked, {len(report['skipped'])} skipped")

    def post_process(self) -> None:
        if not self._get_gene_analysis():
            return
        for raw in sorted(self.raw_results_dir.glob("*.tsv")):
            results = pl.read_csv(raw, separator="\t", schema_overrides={"gene_identifier": pl.String},
                                  missing_utf8_is_empty_string=True)
            generate_gene_result(results=results.select(["gene_symbol", "gene_identifier", "score"]),
                                 sort_order=SortOrder.DESCENDING, output_dir=Path(self.output_dir),
                                 result_path=raw, phenopacket_dir=self.phenopacket_dir)
