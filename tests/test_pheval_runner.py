"""The PhEval runner under the real ``pheval run`` and ``pheval-utils benchmark``, against
``rdrft benchmark`` on the same phenopackets."""

import json
import os
import subprocess
import sys
import tarfile
from importlib.metadata import entry_points
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pheval", reason="the PhEval runner needs the pheval extra (make install puts it in)")

import duckdb  # noqa: E402  (pheval's own store for benchmark results)
import polars as pl  # noqa: E402

from rare_disease_rft.pheval_runner import RunnerSettings, gene_result, pheval_scores  # noqa: E402
from rare_disease_rft.rankers import Ranking  # noqa: E402
from rare_disease_rft.resources import BUNDLED_PHENOPACKETS  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
RUNNER = "rdrftphevalrunner"
EVERY_NTH_COHORT = 20


def pick_phenopackets(out: Path) -> list[str]:
    """The first phenopacket with one causal gene, a PMID and phenotypes of every 20th cohort of
    the bundled phenopacket-store archive (32 cases, rare and common genes alike; on 4 of them
    the answer ties with other genes, where PhEval's tie rule and ours could part)."""
    from rare_disease_rft.inputs.phenopackets import causal_genes, publication

    out.mkdir(parents=True)
    cohorts, picked = [], {}
    with tarfile.open(BUNDLED_PHENOPACKETS) as archive:
        for member in archive:
            if not (member.isfile() and member.name.endswith(".json")):
                continue
            cohort = member.name.split("/")[1]
            if not cohorts or cohorts[-1] != cohort:
                cohorts.append(cohort)
            if (len(cohorts) - 1) % EVERY_NTH_COHORT or cohort in picked:
                continue
            data = archive.extractfile(member).read()
            packet = json.loads(data)
            interpretations = [gi for i in packet.get("interpretations") or []
                               for gi in (i.get("diagnosis") or {}).get("genomicInterpretations") or []]
            if (len(interpretations) == 1 and len(causal_genes(packet)) == 1 and publication(packet)
                    and packet.get("phenotypicFeatures")):
                picked[cohort] = member.name
                (out / Path(member.name).name).write_bytes(data)
    return list(picked.values())


def plugin_pythonpath(tmp_path: Path) -> str:
    """This checkout first; and where the installed metadata predates the entry point (an editable
    install made before pyproject.toml declared it), a dist-info declaring it as pyproject does."""
    section = (ROOT / "pyproject.toml").read_text().split('[project.entry-points."pheval.plugins"]\n', 1)[1]
    declared = dict(line.replace('"', "").split(" = ") for line in section.split("\n\n")[0].splitlines()
                    if line and not line.startswith("#"))
    paths = [str(ROOT)]
    if not any(ep.name == RUNNER for ep in entry_points(group="pheval.plugins")):
        info = tmp_path / "entry_point" / "rare_disease_rft_pheval_plugin-0.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text("Metadata-Version: 2.1\nName: rare-disease-rft-pheval-plugin\nVersion: 0\n")
        (info / "entry_points.txt").write_text(
            "[pheval.plugins]\n" + "".join(f"{name} = {target}\n" for name, target in declared.items()))
        paths.append(str(info.parent))
    return os.pathsep.join(paths + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])


def run(command: list[str], env: dict, cwd: Path) -> subprocess.CompletedProcess:
    done = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{' '.join(command)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def test_pheval_scores_keep_the_rankers_order_through_ties():
    scores = np.array([3.5, 2.0, 2.0, 2.0, 1.0, -np.inf], dtype=np.float32)
    tied = pheval_scores(scores)  # the default: ties stay ties (PhEval's rule for every tool)
    assert list(tied[:5]) == [3.5, 2.0, 2.0, 2.0, 1.0] and tied[5] == 0.0
    out = pheval_scores(scores, break_ties=True)
    assert out.dtype == np.float64 and np.all(np.diff(out) < 0)
    assert out[:5] == pytest.approx([3.5, 2.0, 2.0, 2.0, 1.0], rel=1e-12)
    assert out[5] == 0.0  # no score: below every scored gene
    frame = gene_result(Ranking(["FBN1", "MLL2", "NOTAGENE1"], np.array([2.0, 2.0, 1.0])))
    assert frame["gene_identifier"].to_list() == ["HGNC:3603", "HGNC:7133", ""]
    assert frame["rank"].to_list() == [1, 2, 3]


def test_runner_settings_from_the_config(tmp_path):
    assert RunnerSettings.from_options(None, tmp_path) == RunnerSettings("default", 32, "tied")
    (tmp_path / "models" / "mine").mkdir(parents=True)
    (tmp_path / "models" / "mine" / "config.json").write_text("{}")
    settings = RunnerSettings.from_options({"model": "models/mine", "batch_size": 8}, tmp_path)
    assert settings == RunnerSettings(str(tmp_path / "models" / "mine"), 8, "tied")
    with pytest.raises(ValueError, match="ties must be tied or ranker_order"):
        RunnerSettings.from_options({"ties": "best"}, tmp_path)
    with pytest.raises(ValueError, match="unknown tool_specific_configuration_options modle"):
        RunnerSettings.from_options({"modle": "phenomizer"}, tmp_path)
    with pytest.raises(ValueError, match="batch_size must be a positive integer, got 0"):
        RunnerSettings.from_options({"batch_size": 0}, tmp_path)


def test_pheval_run_and_benchmark_agree_with_rdrft_benchmark(tmp_path):
    corpus, input_dir, results, bench = (tmp_path / n for n in ("corpus", "input", "results", "benchmark"))
    picked = pick_phenopackets(corpus / "phenopackets")
    assert len(picked) == 32
    input_dir.mkdir()
    (input_dir / "config.yaml").write_text(
        "tool: rare-disease-rft\ntool_version: 0.1.0\nvariant_analysis: false\ngene_analysis: true\n"
        "disease_analysis: false\ntool_specific_configuration_options:\n  model: phenomizer\n"
        "  ties: ranker_order\n")  # the ranks rdrft benchmark grades
    results.mkdir()
    env = {**os.environ, "PYTHONPATH": plugin_pythonpath(tmp_path)}
    run([str(BIN / "pheval"), "run", "--input-dir", str(input_dir), "--testdata-dir", str(corpus),
         "--runner", RUNNER, "--output-dir", str(results), "--version", "0.1.0"], env, tmp_path)

    gene_results = sorted((results / "pheval_gene_results").glob("*-gene_result.parquet"))
    assert len(gene_results) == 32
    first = pl.read_parquet(gene_results[0])
    assert first.columns == ["rank", "score", "gene_symbol", "gene_identifier", "true_positive"]
    assert first["true_positive"].sum() == 1 and len(first) > 4000  # every gene the model ranks

    (tmp_path / "benchmark.yaml").write_text(f"""\
benchmark_name: rdrft_phenomizer
runs:
  - run_identifier: phenomizer
    results_dir: {results}
    phenopacket_dir: {corpus / "phenopackets"}
    gene_analysis: true
    variant_analysis: false
    disease_analysis: false
    threshold:
    score_order: descending
plot_customisation:
  gene_plots: {{plot_type: bar_cumulative, rank_plot_title:, roc_curve_title:, precision_recall_title:}}
  disease_plots: {{plot_type: bar_cumulative, rank_plot_title:, roc_curve_title:, precision_recall_title:}}
  variant_plots: {{plot_type: bar_cumulative, rank_plot_title:, roc_curve_title:, precision_recall_title:}}
""")
    run([str(BIN / "pheval-utils"), "benchmark", "--run-yaml", str(tmp_path / "benchmark.yaml"),
         "--output-dir", str(bench), "--no-curves"], env, tmp_path)
    with duckdb.connect(str(bench / "rdrft_phenomizer.duckdb"), read_only=True) as db:
        pheval = db.execute('SELECT * FROM "rdrft_phenomizer_gene_summary"').pl().row(0, named=True)

    tasks = tmp_path / "tasks"
    rdrft = [sys.executable, "-m", "rare_disease_rft"]
    run(rdrft + ["prepare", "phenopackets", str(corpus / "phenopackets"), "--out", str(tasks), "--no-split"],
        env, tmp_path)
    run(rdrft + ["benchmark", "--tasks", str(tasks / "tasks.jsonl"), "--models", "phenomizer",
                 "--json", str(tmp_path / "rdrft.json")], env, tmp_path)
    ours = json.loads((tmp_path / "rdrft.json").read_text())["models"]["phenomizer"]

    assert ours["n"] == pheval["total"] == pheval["number_of_samples"] == 32
    for k in (1, 5, 10):
        assert pheval[f"top{k}"] == round(ours[f"top{k}"] * ours["n"]), f"top-{k}"
    assert pheval["mrr"] == pytest.approx(ours["mrr"], abs=1e-9)
    # some answer genes have no HPO annotation yet: phenomizer cannot rank them, in either count
    assert pheval["found"] == round(ours["found"] * ours["n"])
    # a corpus on which the cut-offs mean something: some cases first, more in the top 10
    assert 0 < pheval["top1"] < pheval["top10"] < 32
