"""The model directory every training method writes (docs/SPEC.md, "Model directory").

    config.json              kind, resolved config, calibration, versions, validation summary
    model.safetensors        weights (or adapter_model.safetensors for PEFT adapters)
    training_curves.csv/png  reward and validation metrics per evaluation step
    validation_metrics.json  the metrics (docs/SPEC.md) of the kept model on the validation split
    MODEL_CARD.md            what it is, how it was trained, how well it does, its limits
"""

from __future__ import annotations

import csv
import json
import platform
import subprocess
import time
from pathlib import Path
from typing import Callable

from . import __version__
from .config import to_dict
from .evaluate import percent
from .hpo import HPO
from .resources import BUNDLED_PHENOPACKETS, BUNDLED_PHENOPACKETS_COMMIT, REPO_ROOT, fingerprint


def code_version() -> dict:
    """Package version and, in a git checkout, the commit (and whether files were modified)."""
    info = {"package": __version__, "python": platform.python_version()}
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True,
                                timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO_ROOT,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        info["git_commit"] = commit + ("+modified" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        info["git_commit"] = None
    import torch

    info["torch"] = torch.__version__
    return info


def data_versions(hpo: HPO, task_files: list[str]) -> dict:
    """HPO release, the phenopacket sources the task files were prepared from, and file hashes."""
    versions = {"hpo_release": hpo.version, "task_files": {}}
    for path in task_files:
        versions["task_files"][path] = fingerprint([Path(path)])
        report = Path(path).parent / "report.json"
        if report.is_file():
            sources = [Path(s).resolve() for s in json.loads(report.read_text()).get("sources", [])]
            versions["phenopacket_sources"] = [_shareable(s) for s in sources]
            if BUNDLED_PHENOPACKETS.resolve() in sources:
                versions["phenopacket_store_commit"] = BUNDLED_PHENOPACKETS_COMMIT
    return versions


def _shareable(path: Path) -> str:
    """A source inside the repository relative to it: a model directory is shared, the builder's
    home folder is not part of its provenance."""
    return str(path.relative_to(REPO_ROOT)) if path.is_relative_to(REPO_ROOT) else str(path)


def plot_curves(curves: list[dict], out: Path, title: str) -> None:
    # a Figure without pyplot: switching the process-wide backend would stop a notebook's inline plots
    from matplotlib.figure import Figure

    steps = [row["step"] for row in curves]
    fig = Figure(figsize=(10, 3.8), dpi=110)
    left, right = fig.subplots(1, 2)
    if "train_reward" in curves[0]:
        left.plot(steps[1:], [row["train_reward"] for row in curves[1:]], label="train reward (sampled)")
    if "val_reward" in curves[0]:
        left.plot(steps, [row["val_reward"] for row in curves], label="validation reward (greedy)")
    left.set_xlabel("step")
    left.set_title("reward")
    left.legend(fontsize=8)
    for key in ("val_top1", "val_top10", "val_clinic_top1", "val_clinic_top10", "val_format_ok"):
        if key in curves[0]:
            right.plot(steps, [row[key] for row in curves],
                       label=key.replace("val_clinic_", "validation clinic-like ").replace("val_", "validation "))
    right.set_xlabel("step")
    right.set_ylim(0, 1)
    right.set_title("validation accuracy")
    right.legend(fontsize=8)
    for ax in (left, right):
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(out)


def write_model_dir(out: Path, config, kind: str, hpo: HPO, curves: list[dict], validation: dict,
                    calibration: dict | None, extra: dict, save_weights: Callable[[Path], object],
                    card_notes: str = "") -> None:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    save_weights(out)
    resolved = to_dict(config)
    summary = {k: validation.get(k) for k in ("n", "top1", "top5", "top10", "mrr", "found", "format_ok")}
    versions = {"data": data_versions(hpo, [config.data.train, config.data.validation]), "code": code_version()}
    meta = {
        "kind": kind,
        "name": config.name,
        **resolved,
        "calibration": calibration or {},
        "versions": versions,
        "validation_metrics": summary,
        "training_summary": extra,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    (out / "config.json").write_text(json.dumps(meta, indent=2) + "\n")
    (out / "validation_metrics.json").write_text(json.dumps(validation, indent=2) + "\n")
    if curves:
        with open(out / "training_curves.csv", "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(curves[0]))
            writer.writeheader()
            writer.writerows(curves)
        plot_curves(curves, out / "training_curves.png", f"{config.name}: training")
    (out / "MODEL_CARD.md").write_text(model_card(meta, validation, curves, card_notes))



def model_card(meta: dict, validation: dict, curves: list[dict], notes: str) -> str:
    data = meta["versions"]["data"]
    code = meta["versions"]["code"]
    subsets = validation.get("subsets", {})
    seen = subsets.get("answer_gene_in_training", {})
    unseen = subsets.get("answer_gene_not_in_training", {})
    cal = meta.get("calibration") or {}
    start, end = (curves[0], curves[-1]) if curves else ({}, {})
    lines = [
        f"# Model card: {meta['name']}",
        "",
        "**A research tool, not a diagnostic device.** It ranks genes for a patient's HPO phenotypes; every "
        "ranking needs review by a clinical geneticist.",
        "",
        "## What it is",
        f"- kind: `{meta['kind']}`, method: `{meta['method']}`",
        f"- trained {meta['created']} with rare-disease-rft {code['package']} (commit {code.get('git_commit')}),"
        f" torch {code.get('torch')}",
        f"- data: HPO release {data['hpo_release']}; phenopacket-store commit "
        f"{data.get('phenopacket_store_commit', 'n/a (user data)')}; task files "
        + ", ".join(f"`{p}` (sha256 {h})" for p, h in data["task_files"].items()),
        "- inputs: present and excluded HPO terms only (sex and age are accepted but unused); no free text, "
        "no variants.",
        "",
        "## Validation (publications never seen in training)",
        "| n | top-1 | top-5 | top-10 | MRR | found | format ok |",
        "|---|---|---|---|---|---|---|",
        f"| {validation.get('n')} | {percent(validation.get('top1'))} | {percent(validation.get('top5'))} | "
        f"{percent(validation.get('top10'))} | {validation.get('mrr', 0):.3f} | {percent(validation.get('found'))} | "
        f"{percent(validation.get('format_ok'))} |",
        "",
        f"- answer gene has training cases: n={seen.get('n')}, top-1 {percent(seen.get('top1'))}, "
        f"top-10 {percent(seen.get('top10'))}",
        f"- answer gene has no training case: n={unseen.get('n')}, top-1 {percent(unseen.get('top1'))}, "
        f"top-10 {percent(unseen.get('top10'))}",
        f"- 95% interval (publication bootstrap): top-1 {validation.get('ci95', {}).get('top1')}, "
        f"top-10 {validation.get('ci95', {}).get('top10')}",
        f"- latency per case: p50 {validation.get('latency_ms', {}).get('p50')} ms, "
        f"p95 {validation.get('latency_ms', {}).get('p95')} ms",
    ]
    clinic = subsets.get("clinic_like")
    if clinic:
        clinic_unseen = subsets["clinic_like_gene_unseen"]
        lines.append(f"- clinic-like (cases of papers HPO's annotations do not cite, as clinic patients: at most "
                     f"the 9 most specific present terms, own paper withheld): n={clinic['n']}, top-1 "
                     f"{percent(clinic['top1'])}, top-10 {percent(clinic['top10'])}; of them gene without training "
                     f"case: n={clinic_unseen['n']}, top-1 {percent(clinic_unseen['top1'])}, top-10 "
                     f"{percent(clinic_unseen['top10'])}")
    if cal:
        lines += ["", "## Calibration",
                  f"Probabilities are a softmax of the shortlist's scores at temperature {cal.get('temperature')}, "
                  f"fitted on validation so that the top-10 genes' probabilities are honest, the answers the "
                  f"shortlist misses included (it held {cal.get('shortlist_coverage')} of them); genes past the "
                  f"shortlist get 0. Expected calibration error of the top-1 probability on validation: "
                  f"{cal.get('validation_ece')} as fitted, {cal.get('validation_ece_cross_fitted')} when the "
                  f"temperature is fitted on half of the publications and measured on the other half."]
    if curves:
        lines += ["", "## Training",
                  f"Steps: {meta['training_summary'].get('steps')}; kept step {meta['training_summary'].get('best_step')} "
                  f"(best validation {meta.get('training', {}).get('select_on', 'score')}). "
                  f"Validation top-1 at step 0: {percent(start.get('val_top1'))}, at the last step: "
                  f"{percent(end.get('val_top1'))}. Curves: `training_curves.csv`, `training_curves.png`."]
    lines += ["", "## Limits",
              "- Trained and validated on curated published case reports (phenopacket-store), which over-represent "
              "well-described genes and record many excluded features; clinical notes look different.",
              "- About half of the case reports are also cited by the HPO annotations the knowledge evidence uses, "
              "so knowledge-based evidence is optimistic on them.",
              "- Genes with neither HPO annotations nor training cases cannot be ranked high."]
    if notes:
        lines += ["", notes]
    return "\n".join(lines) + "\n"
