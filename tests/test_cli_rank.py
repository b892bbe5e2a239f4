"""`rdrft rank`, `rdrft evaluate` and `rdrft benchmark`, run in-process on small task files."""

import json
import subprocess
import sys

import pytest

from rare_disease_rft.cli import main

MARFAN = "HP:0001166,HP:0001083,HP:0002616,HP:0001519"
OBSOLETE, REPLACEMENT = "HP:0000057", "HP:0008665"  # obsolete "Clitoromegaly" -> Clitoral hypertrophy

TASKS = [  # (present, answer, pmid); the likelihood ranker puts the first three answers first
    (MARFAN, "FBN1", "PMID:1"),
    ("HP:0000957,HP:0000997,HP:0009737,HP:0001067", "NF1", "PMID:2"),
    ("HP:0008905,HP:0002007,HP:0011800,HP:0004060,HP:0004322", "FGFR3", "PMID:3"),
    (MARFAN, "MDGA2", "PMID:4"),  # a gene newer than the HPO annotations: never found
]


@pytest.fixture
def task_file(tmp_path):
    path = tmp_path / "tasks.jsonl"
    lines = [json.dumps({"id": f"case_{i}", "source": {"kind": "phenopacket", "pmid": pmid},
                         "present": present.split(","), "excluded": [], "sex": None, "age_years": None,
                         "answer": {"gene": gene}, "split": "test"})
             for i, (present, gene, pmid) in enumerate(TASKS)]
    path.write_text("\n".join(lines) + "\n")
    return path


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_rank_prints_the_top_genes_with_scores(capsys):
    code, out, err = run(capsys, "rank", "--model", "likelihood", "--present", MARFAN, "--top", "3")
    lines = out.splitlines()
    assert (code, err) == (0, "")
    assert lines[0].split()[:3] == ["rank", "gene", "score"]
    assert [line.split()[:2] for line in lines[1:]] == [["1", "FBN1"], ["2", "FBN2"], ["3", "CBS"]]
    assert "Arachnodactyly" in lines[1]


def test_rank_json_maps_an_obsolete_id_and_says_so_on_stderr(capsys):
    code, out, err = run(capsys, "rank", "--model", "phenomizer", "--present", f"{OBSOLETE},HP:0001166",
                         "--top", "2", "--json")
    result = json.loads(out)
    note = f"{OBSOLETE} is obsolete, replaced by {REPLACEMENT} (Clitoral hypertrophy)"
    tie = (f"{result['tied_at_top']} genes share the top score: the phenotypes do not tell them apart, and their "
           "order (alphabetical) is not a ranking. More specific phenotypes, or candidate genes, narrow it")
    assert code == 0 and result["tied_at_top"] == result["genes"][0]["tied"] > 1
    assert err == f"note: {note}\nnote: {tie}\n"
    assert result["present"] == [REPLACEMENT, "HP:0001166"]
    assert result["notes"] == [note, tie]
    assert [g["rank"] for g in result["genes"]] == [1, 2]
    assert set(result["genes"][0]["explanation"]) == {"gene_annotated", "annotations_from", "matched",
                                                      "contradicting", "unexplained", "diseases", "similar_cases"}


def test_rank_text_mode_reports_the_obsolete_id_too(capsys):
    code, _, err = run(capsys, "rank", "--model", "likelihood", "--present", OBSOLETE, "--top", "1")
    assert code == 0
    assert err.splitlines()[0] == f"note: {OBSOLETE} is obsolete, replaced by {REPLACEMENT} (Clitoral hypertrophy)"


def test_rank_says_which_terms_it_keeps_but_cannot_use_as_given(capsys):
    code, out, err = run(capsys, "rank", "--model", "likelihood", "--present", "HP:0001166,HP:0000005,HP:0001519",
                         "--excluded", "HP:0001519", "--top", "1", "--json")
    result = json.loads(out)
    assert code == 0
    assert result["present"] == ["HP:0001166", "HP:0000005", "HP:0001519"]
    assert result["excluded"] == []
    assert result["notes"] == [
        "HP:0001519 (Disproportionate tall stature) was given both present and excluded; it is used as present",
        "HP:0000005 (Mode of inheritance) is not a phenotypic abnormality (outside HP:0000118); it is kept, "
        "but no gene's phenotype annotations use it",
    ]
    assert err.splitlines() == [f"note: {n}" for n in result["notes"]]


@pytest.mark.parametrize("argv, message", [
    (["--present", "HP:0001166,HP:9999999"], "HP:9999999 is not a term of HPO release"),
    (["--present", "HP:0001166", "--excluded", "seizures"], "'seizures' is not an HPO id"),
    (["--present", "HP:0001166", "--top", "0"], "--top must be at least 1, got 0"),
    (["--present", "HP:0001166", "--threads", "0"], "--threads must be at least 1, got 0"),
])
def test_rank_bad_input_is_one_line_and_exit_2(capsys, argv, message):
    code, out, err = run(capsys, "rank", "--model", "likelihood", *argv)
    assert (code, out) == (2, "")
    assert len(err.splitlines()) == 1 and err.startswith("rdrft rank: error: ") and message in err


def test_the_installed_command_exits_2_on_an_unknown_id():
    proc = subprocess.run([sys.executable, "-m", "rare_disease_rft", "rank", "--model", "likelihood",
                           "--present", "HP:9999999"], capture_output=True, text=True, timeout=120)
    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr.count("\n") == 1 and "HP:9999999" in proc.stderr


def test_rank_runs_no_code_of_numpy_tools_until_they_are_used():
    """scipy's clone of numpy's namespace imports numpy.f2py and numpy.testing: `rdrft rank` defers
    them (a tenth of its start), and they still work when something uses them."""
    script = ("import sys; from rare_disease_rft.cli import main; "
              f"code = main(['rank', '--model', 'likelihood', '--json', '--present', '{MARFAN}']); "
              "ran = [m for m in ('numpy.f2py.crackfortran', 'numpy.testing._private.utils') if m in sys.modules]; "
              "import numpy; numpy.testing.assert_equal(numpy.f2py.__name__, 'numpy.f2py'); "
              "print(code, ran, 'numpy.testing._private.utils' in sys.modules, file=sys.stderr)")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.stderr.splitlines()[-1] == "0 [] True"
    assert json.loads(proc.stdout)["genes"][0]["gene"] == "FBN1"


def test_evaluate_limit_writes_the_metrics_json(capsys, task_file, tmp_path):
    out_json = tmp_path / "out" / "metrics.json"
    code, out, _ = run(capsys, "evaluate", "--model", "likelihood", "--tasks", str(task_file), "--limit", "3",
                       "--json", str(out_json))
    metrics = json.loads(out_json.read_text())
    assert code == 0
    assert (metrics["model"], metrics["n"], metrics["top1"], metrics["found"]) == ("likelihood", 3, 1.0, 1.0)
    assert metrics["subsets"]["answer_gene_not_in_training"]["n"] == 3
    assert f"{task_file}: 3 cases" in out and "likelihood" in out.splitlines()[-1]


def test_evaluate_counts_a_missing_gene_as_a_miss(capsys, task_file, tmp_path):
    out_json = tmp_path / "metrics.json"
    assert run(capsys, "evaluate", "--model", "likelihood", "--tasks", str(task_file), "--json", str(out_json))[0] == 0
    metrics = json.loads(out_json.read_text())
    assert (metrics["n"], metrics["top1"], metrics["found"], metrics["mrr"]) == (4, 0.75, 0.75, 0.75)


def test_benchmark_writes_tasks_models_json_and_a_png(capsys, task_file, tmp_path):
    out_json, plot = tmp_path / "bench.json", tmp_path / "plots" / "topk.png"
    code, out, _ = run(capsys, "benchmark", "--models", "phenomizer,likelihood", "--tasks", str(task_file),
                       "--json", str(out_json), "--plot", str(plot))
    bench = json.loads(out_json.read_text())
    assert code == 0
    assert set(bench) == {"tasks", "models", "paired_differences"} and bench["tasks"] == str(task_file)
    assert list(bench["models"]) == ["phenomizer", "likelihood"]
    assert [(m["model"], m["n"], m["top1"]) for m in bench["models"].values()] == [
        ("phenomizer", 4, 0.75), ("likelihood", 4, 0.75)]
    assert all(len(m["topk_curve"]) == 50 for m in bench["models"].values())
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the first model against the others, on the same cases: both find the same 3 of 4 here
    paired = bench["paired_differences"]
    assert paired["reference"] == "phenomizer" and list(paired["against"]) == ["likelihood"]
    assert paired["against"]["likelihood"]["all"] == {
        "n": 4, "top1": {"difference": 0.0, "ci95": [0.0, 0.0]}, "top10": {"difference": 0.0, "ci95": [0.0, 0.0]}}
    lines = out.splitlines()
    table = lines.index(next(line for line in lines if line.startswith("model ")))
    assert [line.split()[0] for line in lines[table + 2 : table + 4]] == ["phenomizer", "likelihood"]
    # every case's paper is uncited, with no excluded term and at most 9: as clinic patients, as published
    assert [m["subsets"]["clinic_like"]["n"] for m in bench["models"].values()] == [4, 4]
    assert [m["subsets"]["clinic_like"]["top1"] for m in bench["models"].values()] == [0.75, 0.75]
    clinic = lines.index(next(line for line in lines if line.startswith("clinic-like subset")))
    assert [line.split()[:3] for line in lines[clinic + 3 : clinic + 5]] == [["phenomizer", "4", "0.750"],
                                                                              ["likelihood", "4", "0.750"]]
    assert lines[-2].startswith("  vs likelihood: top-1 +0.0 (+0.0 to +0.0)")
    assert lines[-1].startswith("    clinic-like (n=4): top-1 +0.0 (+0.0 to +0.0)")


@pytest.mark.parametrize("argv, message", [
    (["evaluate", "--model", "likelihood", "--tasks", "{missing}"], "does not exist"),
    (["evaluate", "--model", "likelihood", "--tasks", "{tasks}", "--limit", "0"], "--limit must be at least 1, got 0"),
    (["evaluate", "--model", "no-such-model", "--tasks", "{tasks}"], "neither a built-in ranker"),
    (["benchmark", "--models", ",", "--tasks", "{tasks}"], "--models is empty"),
])
def test_evaluate_and_benchmark_bad_input_is_one_line_and_exit_2(capsys, task_file, tmp_path, argv, message):
    argv = [a.format(tasks=task_file, missing=tmp_path / "missing.jsonl") for a in argv]
    code, _, err = run(capsys, *argv)
    assert code == 2
    assert len(err.splitlines()) == 1 and message in err
