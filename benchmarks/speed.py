"""How fast ranking is (issue 19): per patient, with explanations, in batches, and from the command line.

    .venv/bin/python benchmarks/speed.py [--limit N] [--repeats 3] [--workers 2] [--cli-runs 5] [--app-repeats 3]
                                         [--out results]

On the held-out test split (prepared from the bundled phenopackets if missing) with the default
model (trained into ``artifacts/default-model`` if missing) and the two knowledge rankers, each
loaded as for inference (one thread):

- ranking: per case, wall and CPU time of ``rank``, in ``--repeats`` passes over the cases with
  the three rankers interleaved. The first pass starts with empty per-term caches (every term is
  new), the later ones find the terms kept; p50/p95 of the first pass and the medians over the
  later ones are reported, and each ranker's p50 as a ratio to phenomizer's in the same pass;
- explanation: per case, the work ``rank_and_explain`` adds to the ranking just made
  (``explain_ranking`` of its top 10 genes: matched terms, diseases, similar cases, ties);
- batches: ``rank_many`` against a loop of ``rank`` (patients per CPU second, one process), and
  ``batch.rank_many_parallel`` with top-10 explanations on 1 and ``--workers`` processes (patients
  per second, wall, and per CPU second of all processes);
- ``rdrft rank`` for one patient with the default model, ``--cli-runs`` times after a first run
  that fills the caches: wall and CPU seconds and peak memory (RSS). Warm means what a user's
  second run finds: the knowledge base's and the model's caches filled, and Python's bytecode
  written (an installed package has its .pyc files; the runs may write them even where
  ``PYTHONDONTWRITEBYTECODE`` is set, which would have every run compile the project anew);
- the app with the default model, in Debian's headless Chromium, by ``benchmarks/app_speed.py``
  (``--app-repeats`` server starts; 0 leaves it out): seconds from the server's start to a usable
  page, and from a click to the redrawn ranking. Without Chromium the report says so and the rest
  stands.

The machine may be shared: wall times then include waiting for a core, so CPU times and the
ratios to phenomizer are reported beside them. Writes ``OUT/speed.json`` (the app's part also as
``OUT/app_speed.json``, with its screenshot) and prints a table with the targets of issue 19.
"""

from __future__ import annotations

import os

# one thread everywhere, set before numpy starts
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.app_speed import TARGETS_S as APP_TARGETS_S  # noqa: E402
from benchmarks.app_speed import CLICKS, AppNotMeasured, measure_app  # noqa: E402
from rare_disease_rft.batch import rank_many_parallel  # noqa: E402
from rare_disease_rft.cli import main as rdrft  # noqa: E402
from rare_disease_rft.explain import explain_ranking  # noqa: E402
from rare_disease_rft.hpo import load_hpo  # noqa: E402
from rare_disease_rft.rankers import Case  # noqa: E402
from rare_disease_rft.registry import load_ranker  # noqa: E402
from rare_disease_rft.resources import DEFAULT_DATA_DIR, DEFAULT_MODEL_DIR  # noqa: E402
from rare_disease_rft.tasks import read_tasks  # noqa: E402

RANKERS = ("phenomizer", "likelihood", "default")
# the targets: milliseconds per case (p50/p95), patients per second, seconds
TARGETS = {"default_rank_p50_ms": 5, "default_rank_p95_ms": 12, "knowledge_rank_p50_ms": 2,
           "explain_top10_p50_ms": 5, "batch_patients_per_s": 300, "cli_rank_s": 1,
           **{f"app_{key}": value for key, value in APP_TARGETS_S.items()}}
# a Marfan-syndrome patient (the app benchmark's deep link)
CLI_PATIENT = ["--present", "HP:0001166,HP:0001519,HP:0001083", "--excluded", "HP:0002650"]


def percentiles(seconds: list[float]) -> dict:
    return {"p50_ms": round(float(np.percentile(seconds, 50)) * 1e3, 3),
            "p95_ms": round(float(np.percentile(seconds, 95)) * 1e3, 3)}


def time_passes(rankers: dict, cases: list[Case], repeats: int, hpo) -> list[dict]:
    """Per pass and ranker: wall and CPU percentiles of rank, and of the top-10 explanation."""
    passes = []
    for _ in range(repeats):
        one = {}
        for name, ranker in rankers.items():
            wall, cpu, explain_wall, explain_cpu = [], [], [], []
            for case in cases:
                w0, c0 = time.perf_counter(), time.thread_time()
                ranking = ranker.rank(case)
                w1, c1 = time.perf_counter(), time.thread_time()
                explain_ranking(ranker, case, ranking, 10, hpo)
                w2, c2 = time.perf_counter(), time.thread_time()
                wall.append(w1 - w0)
                cpu.append(c1 - c0)
                explain_wall.append(w2 - w1)
                explain_cpu.append(c2 - c1)
            one[name] = {"rank_wall": percentiles(wall), "rank_cpu": percentiles(cpu),
                         "explain_wall": percentiles(explain_wall), "explain_cpu": percentiles(explain_cpu)}
        for name in rankers:  # each ranker against phenomizer in the same pass
            one[name]["rank_p50_over_phenomizer"] = round(
                one[name]["rank_wall"]["p50_ms"] / one["phenomizer"]["rank_wall"]["p50_ms"], 2)
        passes.append(one)
    return passes


def summarise(passes: list[dict]) -> dict:
    """The first pass as it is; the later ones by their medians."""
    later = passes[1:] or passes

    def median(path: tuple[str, ...]) -> float:
        values = []
        for one in later:
            value = one
            for key in path:
                value = value[key]
            values.append(value)
        return round(statistics.median(values), 3)

    out = {"first_pass": passes[0], "later_passes": {}}
    for name, timings in passes[0].items():
        out["later_passes"][name] = {
            kind: ({k: median((name, kind, k)) for k in value} if isinstance(value, dict) else median((name, kind)))
            for kind, value in timings.items()}
    return out


def batch_rates(default, cases: list[Case], workers: int) -> dict:
    """rank_many against rank in one process; rank_many_parallel with explanations on 1 and ``workers``."""
    out = {}
    c0 = time.process_time()
    for case in cases:
        default.rank(case)
    c1 = time.process_time()
    default.rank_many(cases)
    c2 = time.process_time()
    out["rank_loop_patients_per_cpu_s"] = round(len(cases) / (c1 - c0), 1)
    out["rank_many_patients_per_cpu_s"] = round(len(cases) / (c2 - c1), 1)
    for n in sorted({1, workers}):
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        w0, c0 = time.perf_counter(), time.process_time()
        results = rank_many_parallel(default, cases, workers=n, top=10)
        w1, c1 = time.perf_counter(), time.process_time()
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (c1 - c0) + (after.ru_utime - children.ru_utime) + (after.ru_stime - children.ru_stime)
        assert len(results) == len(cases)
        out[f"parallel_{n}_workers"] = {"patients_per_s": round(len(cases) / (w1 - w0), 1),
                                        "patients_per_cpu_s": round(len(cases) / cpu, 1)}
    return out


def cli_runs(runs: int) -> dict:
    """``rdrft rank`` for one patient, each run in a fresh process measured by a parent of its own."""
    probe = ("import resource, subprocess, sys, time; t = time.perf_counter(); "
             "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL); w = time.perf_counter() - t; "
             "u = resource.getrusage(resource.RUSAGE_CHILDREN); "
             "print(w, u.ru_utime + u.ru_stime, u.ru_maxrss)")
    command = [sys.executable, "-c", probe, sys.executable, "-m", "rare_disease_rft", "rank", "--model", "default",
               "--json", *CLI_PATIENT]
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = str(REPO)
    subprocess.run(command, check=True, env=env, capture_output=True)  # fills the caches (bytecode too)
    measured = [tuple(float(v) for v in subprocess.run(command, check=True, env=env, capture_output=True,
                                                         text=True).stdout.split()) for _ in range(runs)]
    return {"wall_s": round(statistics.median(m[0] for m in measured), 3),
            "cpu_s": round(statistics.median(m[1] for m in measured), 3),
            "peak_rss_mb": round(max(m[2] for m in measured) / 1024, 1), "runs": runs}


def table(report: dict) -> str:
    later, first = report["ranking"]["later_passes"], report["ranking"]["first_pass"]
    lines = ["| measure | wall | CPU | x phenomizer | target |", "| --- | --- | --- | --- | --- |"]
    for name in RANKERS:
        target = "5 / 12 ms" if name == "default" else "p50 2 ms"
        for label, timings in (("", later[name]), (" (first pass)", first[name])):
            lines.append(f"| {name} rank p50 / p95{label} | {timings['rank_wall']['p50_ms']:.2f} / "
                         f"{timings['rank_wall']['p95_ms']:.2f} ms | {timings['rank_cpu']['p50_ms']:.2f} / "
                         f"{timings['rank_cpu']['p95_ms']:.2f} ms | {timings['rank_p50_over_phenomizer']:.2f} | {target} |")
    for name in RANKERS:
        e = later[name]
        lines.append(f"| {name} top-10 explanation p50 / p95 | {e['explain_wall']['p50_ms']:.2f} / "
                     f"{e['explain_wall']['p95_ms']:.2f} ms | {e['explain_cpu']['p50_ms']:.2f} / "
                     f"{e['explain_cpu']['p95_ms']:.2f} ms | | p50 5 ms |")
    batch = report["batch"]
    for key, value in batch.items():
        if key.startswith("parallel_"):
            lines.append(f"| default, top-10 explained, {key.split('_')[1]} worker(s) | {value['patients_per_s']:.0f} "
                         f"patients/s | {value['patients_per_cpu_s']:.0f} per CPU s | | 300/s on 2 cores |")
    lines.append(f"| default rank_many / rank loop | | {batch['rank_many_patients_per_cpu_s']:.0f} / "
                 f"{batch['rank_loop_patients_per_cpu_s']:.0f} per CPU s | | |")
    cli = report["cli_rank"]
    lines.append(f"| `rdrft rank` (default, one patient, warm cache) | {cli['wall_s']:.2f} s | {cli['cpu_s']:.2f} s | "
                 f"| 1 s; peak RSS {cli['peak_rss_mb']:.0f} MB |")
    app = report["app"]
    if "median" in app:
        starts = len(app["runs"])
        lines.append(f"| app: page usable after the server starts (median of {starts}) | {app['median']['page_ready_s']:.2f} s "
                     f"| | | {APP_TARGETS_S['page_ready_s']} s |")
        lines.append(f"| app: ranking redrawn after a click (median of {starts}) | "
                     f"{app['median']['ranking_after_click_s']:.2f} s | | | {APP_TARGETS_S['ranking_after_click_s']} s |")
    else:
        lines.append(f"| app | not measured: {app['not_measured']} | | | |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, metavar="N", help="only the first N test cases")
    parser.add_argument("--repeats", type=int, default=3, help="passes over the cases (default 3)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes of the batch (default: cores)")
    parser.add_argument("--cli-runs", type=int, default=5, help="timed `rdrft rank` runs (default 5)")
    parser.add_argument("--app-repeats", type=int, default=3, metavar="N",
                        help="server starts of the app's measurement (default 3; 0: not measured)")
    parser.add_argument("--out", default=str(REPO / "results"), metavar="DIR")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    load_before = os.getloadavg()
    test_file = DEFAULT_DATA_DIR / "test.jsonl"
    if not test_file.is_file() and rdrft(["prepare", "phenopackets", "--out", str(DEFAULT_DATA_DIR)]) != 0:
        return 1
    if not (DEFAULT_MODEL_DIR / "config.json").is_file():
        if rdrft(["train", "--config", str(REPO / "configs" / "default.yaml"), "--out", str(DEFAULT_MODEL_DIR)]) != 0:
            return 1
    hpo = load_hpo()
    cases = [Case.from_task(t) for t in read_tasks(test_file, limit=args.limit)]
    rankers = {name: load_ranker(name) for name in RANKERS}  # one thread each, as for inference
    print(f"{len(cases)} test cases, {args.repeats} passes, rankers {', '.join(RANKERS)}", file=sys.stderr)
    ranking = summarise(time_passes(rankers, cases, args.repeats, hpo))
    print("batches", file=sys.stderr)
    batch = batch_rates(rankers["default"], cases, args.workers)
    print("rdrft rank", file=sys.stderr)
    cli = cli_runs(args.cli_runs)
    app = {"not_measured": "--app-repeats 0"}
    if args.app_repeats > 0:
        print("the app", file=sys.stderr)
        try:
            app = measure_app("default", args.app_repeats, CLICKS, out)
        except AppNotMeasured as err:
            app = {"not_measured": str(err)}
    report = {
        "date": time.strftime("%Y-%m-%d"), "cases": len(cases), "tasks": str(test_file.relative_to(REPO)),
        "model": str(DEFAULT_MODEL_DIR.relative_to(REPO)), "machine": {
            "cores": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
            "load_average_before": [round(v, 2) for v in load_before],
            "load_average_after": [round(v, 2) for v in os.getloadavg()]},
        "ranking": ranking, "batch": batch, "cli_rank": cli, "targets": TARGETS,
        "app": app,
        "seconds": round(time.time() - started, 1),
    }
    (out / "speed.json").write_text(json.dumps(report, indent=2) + "\n")
    print(table(report))
    print(f"load average {report['machine']['load_average_before']} before, "
          f"{report['machine']['load_average_after']} after; wrote {out / 'speed.json'} in {report['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
