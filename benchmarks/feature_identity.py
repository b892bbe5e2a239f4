"""Whether a change to the feature code keeps the policy's features bit for bit (issue 19).

    .venv/bin/python benchmarks/feature_identity.py --save before.npz     # on the code before
    .venv/bin/python benchmarks/feature_identity.py --compare before.npz  # on the code after

Extracts the features of the validation split with the index of the training split, as training
does (``training.policy_grpo``), four ways: as released; each case's own paper withheld
(``Case.withheld_publication``); its publication also left out of the index (``exclude_pmid``);
and the clinic-like subset as clinic patients, own paper withheld (``evaluate.clinic_like_tasks``).
``--training N`` adds the first N training cases, their publication left out, with and without
their paper's knowledge. ``--save`` writes every case's shortlist, values and rest of the ranking;
``--compare`` recomputes them and prints, per way, how many cases differ in any bit (exit 1 if any).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rare_disease_rft.config import DataConfig  # noqa: E402
from rare_disease_rft.evaluate import clinic_like_tasks  # noqa: E402
from rare_disease_rft.hpo import load_hpo  # noqa: E402
from rare_disease_rft.rankers import Case  # noqa: E402
from rare_disease_rft.rankers.case_index import CaseIndex  # noqa: E402
from rare_disease_rft.rankers.features import FeatureExtractor  # noqa: E402


def ways(train, validation, hpo, training_cases: int):
    """(name, [(case, exclude_pmid)]) for every way the features are extracted."""
    yield "as released", [(Case.from_task(t), None) for t in validation]
    yield "own paper withheld", [(Case.from_task(t, True), None) for t in validation]
    yield "withheld, publication left out", [(Case.from_task(t, True), t.pmid) for t in validation]
    yield "clinic-like, withheld", [(Case.from_task(t, True), t.pmid) for t in clinic_like_tasks(validation, hpo)[1]]
    if training_cases:
        yield "training, publication left out", [(Case.from_task(t), t.pmid) for t in train[:training_cases]]
        yield "training, also withheld", [(Case.from_task(t, True), t.pmid) for t in train[:training_cases]]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--save", type=Path, help="write the features here (.npz)")
    what.add_argument("--compare", type=Path, help="compare with features --save wrote")
    parser.add_argument("--training", type=int, default=0, help="also the first N training cases")
    args = parser.parse_args()

    hpo = load_hpo()
    train, validation = DataConfig().read()
    extractor = FeatureExtractor(hpo, CaseIndex.build(hpo, train))
    reference = np.load(args.compare) if args.compare else None
    arrays, differing = {}, 0
    for way, cases in ways(train, validation, hpo, args.training):
        t0 = time.perf_counter()
        changed = 0
        for i, (case, exclude) in enumerate(cases):
            f = extractor.extract(case, exclude_pmid=exclude)
            for part in ("candidates", "values", "rest"):
                key = f"{way}/{i}/{part}"
                arrays[key] = getattr(f, part)
            if reference is not None:
                changed += any(not np.array_equal(arrays[f"{way}/{i}/{p}"].view(np.uint8),
                                                  reference[f"{way}/{i}/{p}"].view(np.uint8))
                               for p in ("candidates", "values", "rest"))
        seconds = time.perf_counter() - t0
        withheld = sum(hpo.without_publication(c.withheld_publication) is not None
                       for c, _ in cases if c.withheld_publication)
        note = f", {changed} differ" if reference is not None else ""
        print(f"{way}: {len(cases)} cases ({withheld} with knowledge withheld), "
              f"{1000 * seconds / max(len(cases), 1):.2f} ms each{note}")
        differing += changed
    if args.save:
        np.savez_compressed(args.save, **arrays)
        print(f"wrote {args.save}")
        return 0
    print("all bit-identical" if not differing else f"{differing} cases differ")
    return 1 if differing else 0


if __name__ == "__main__":
    raise SystemExit(main())
