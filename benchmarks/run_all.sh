#!/usr/bin/env bash
# Regenerates every number and figure of the README into results/, one script after another.
#
#   benchmarks/run_all.sh [--skip-peers]
#
# Needs the environment of `make install` (or PYTHON=/path/to/python). Prepares the bundled data and
# trains the default model and its ablation when they are missing (about 5 minutes on 2 CPU cores);
# the CPU LLM recipe about 17 minutes more; the hpo3 and FastHPOCR peers about 30 minutes more,
# --skip-peers leaves them out.
set -euo pipefail

cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
if [ ! -x "$PYTHON" ]; then
    echo "run_all.sh: $PYTHON not found; run 'make install' first (or set PYTHON)" >&2
    exit 2
fi

ranker_peers=()
concept_peers=()
case "${1:-}" in
    "") ;;
    --skip-peers) ranker_peers=(--skip-peers); concept_peers=(--no-peer) ;;
    *) echo "run_all.sh: unknown option '$1' (the only option is --skip-peers)" >&2; exit 2 ;;
esac

run() {
    echo "== $* ($(date -u +%Y-%m-%dT%H:%M:%SZ))"
    "$PYTHON" "$@"
}

run benchmarks/knowledge_rankers.py "${ranker_peers[@]}"
run benchmarks/default_model.py "${ranker_peers[@]}"
# ranking, explanation, batch, `rdrft rank` and app times of the default model (about 3 minutes); the app's
# part (and the README's screenshot) needs Debian's Chromium (as root: make browser), and says so without it
run benchmarks/speed.py
run benchmarks/enrichment_same_release.py
run benchmarks/own_paper_withheld.py
run benchmarks/policy_sweep.py  # variants of the default recipe on validation (about 15 minutes when untrained)
run benchmarks/seed_spread.py  # seeds 0-4 of the default and its ablation, on test (about 15 minutes when untrained)
run benchmarks/clinic_sweep.py  # variants for clinic patients on validation (nine trainings, 30-90 minutes when untrained)
run benchmarks/clinic_like.py  # the default and the knowledge rankers on test, as released and own paper withheld
run benchmarks/concept_recognition.py "${concept_peers[@]}"
run benchmarks/llm_rft.py  # trains the CPU LLM recipe if artifacts/ lacks it (about 17 minutes)
run benchmarks/tables.py  # the README's tables, from the files just written
