"""The prompt an LLM ranks from, and the answer format it must use.

The prompt holds what a ranker may see of the patient (present and excluded phenotype labels,
never the answer, a title or free text) and the shortlist of candidate genes with their evidence
(the patient's terms each gene's HPO annotations explain, and excluded terms the gene usually
shows). The shortlist is shuffled with an RNG seeded per case, so the model cannot learn to copy
the shortlist ranker's order and has to read the evidence.

Answer format (parsed by :func:`rare_disease_rft.graders.parse_ranking`, restricted to the
shortlist)::

    <answer>["GENE1", "GENE2", ...]</answer>

after at most a few sentences of reasoning; genes best first.
"""

from __future__ import annotations

import hashlib
import random

from ..explain import Annotations, explain_genes
from ..genes import gene_names
from ..hpo import HPO
from ..rankers.base import Case, Ranking
from .config import PromptConfig

SYSTEM_PROMPT = "You are a clinical geneticist ranking candidate genes for a rare-disease patient."

ANSWER_INSTRUCTIONS = (
    "Rank the candidate genes. Write one short sentence of reasoning, then {which}, most likely first, "
    'as a JSON list in answer tags: <answer>["GENE1", "GENE2", ...]</answer>'
)


def answer_instructions(settings: PromptConfig) -> str:
    n = settings.answer_genes
    return ANSWER_INSTRUCTIONS.format(which=f"the {n} most likely candidate genes" if n else "every candidate gene")


def make_shortlist(ranking: Ranking, size: int) -> list[tuple[str, str]]:
    """The first ``size`` genes as (approved symbol, ranker's symbol) pairs, duplicates dropped.

    The approved symbol is what the model sees and the parser accepts; the ranker's symbol is
    the key of the gene's HPO annotations.
    """
    names = gene_names()
    shortlist: dict[str, str] = {}
    for gene in ranking.genes:
        if len(shortlist) == size:
            break
        shortlist.setdefault(names.normalise(gene), gene)
    return list(shortlist.items())


def case_seed(case: Case, seed: int) -> str:
    """A stable per-case seed (the same in every process, unlike ``hash``), from what the prompt shows."""
    key = f"{seed}|{','.join(sorted(case.present))}|{','.join(sorted(case.excluded))}"
    return hashlib.sha256(key.encode()).hexdigest()


def shuffled(items: list, case: Case, seed: int) -> list:
    out = list(items)
    random.Random(case_seed(case, seed)).shuffle(out)
    return out


def _labels(hpo: HPO, term_ids: tuple[str, ...], limit: int) -> str:
    # the most informative terms first, so a long list is cut where it says least
    ordered = sorted(term_ids, key=lambda t: (-hpo.ic(t), t))
    labels = [hpo.name(t) for t in ordered[:limit]]
    more = len(ordered) - len(labels)
    return "; ".join(labels) + (f"; and {more} more" if more > 0 else "")


def _named(entries: list[dict], limit: int) -> str:
    """`` (label, label)`` for the first ``limit`` entries; empty when none are shown."""
    return f" ({', '.join(e['label'] for e in entries[:limit])})" if entries and limit > 0 else ""


def gene_line(symbol: str, evidence: dict, n_present: int, settings: PromptConfig) -> str:
    """One candidate and its evidence: ``- STXBP1: explains 2/3 (Seizure); 1 typical but absent (Microcephaly)``."""
    # the most specific matches and the most typical contradictions are the ones worth the tokens
    matched = sorted(evidence["matched"], key=lambda m: -m["shared_ancestor"]["ic"])
    contradicting = sorted(evidence["contradicting"], key=lambda c: -c["frequency"])
    line = f"- {symbol}: explains {len(matched)}/{n_present}{_named(matched, settings.max_terms_per_gene)}"
    if contradicting:
        line += f"; {len(contradicting)} typical but absent{_named(contradicting, settings.max_terms_per_gene)}"
    return line


def shortlist_evidence(hpo: HPO, case: Case, shortlist: list[tuple[str, str]],
                       case_annotations: Annotations | None = None) -> dict[str, dict]:
    """:func:`~rare_disease_rft.explain.explain_gene` of each shortlisted gene (all at once), by
    approved symbol; ``case_annotations`` (the shortlist ranker's hook) explains genes known only
    from published cases."""
    explanations = explain_genes(hpo, case, [hpo_symbol for _, hpo_symbol in shortlist], case_annotations)
    return {symbol: explanation for (symbol, _), explanation in zip(shortlist, explanations)}


def build_messages(hpo: HPO, case: Case, evidence: dict[str, dict], settings: PromptConfig, seed: int) -> list[dict]:
    """The chat prompt for one case; ``evidence`` from :func:`shortlist_evidence`, genes shown shuffled."""
    lines = [f"Phenotypes: {_labels(hpo, case.present, settings.max_present_terms)}."]
    if case.excluded:
        lines.append(f"Absent: {_labels(hpo, case.excluded, settings.max_excluded_terms)}.")
    lines.append("Candidate genes (random order), with the phenotypes each explains:")
    lines += [gene_line(symbol, evidence[symbol], len(case.present), settings)
              for symbol in shuffled(list(evidence), case, seed)]
    lines.append(answer_instructions(settings))
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": "\n".join(lines)}]
