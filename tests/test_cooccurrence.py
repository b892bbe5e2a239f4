"""Which findings go together in the case reports: the lift, its paper weights, leaving a paper out,
and the credit it gives genes."""

import numpy as np
import pytest
import scipy.sparse as sp

from rare_disease_rft.rankers import Case
from rare_disease_rft.rankers.case_index import CaseIndex
from rare_disease_rft.rankers.cooccurrence import COOCCURRENCE_PRIOR, CreditTable, TermCooccurrence, best_lift
from rare_disease_rft.rankers.features import FEATURES, FeatureExtractor
from rare_disease_rft.tasks import Answer, Task

SEIZURE, INTELLECTUAL_DISABILITY, ARACHNODACTYLY = "HP:0001250", "HP:0001249", "HP:0001166"
FOCAL_SEIZURE = "HP:0007359"  # a kind of seizure, reported in one paper only


def _tasks():
    def task(i, pmid, gene, present):
        return Task(f"case{i}", list(present), answer=Answer(gene), source={"pmid": pmid})

    # PMID:1's two cases share one unit of weight: seizures with intellectual disability in 2 of 4 units
    return [task(1, "PMID:1", "SCN1A", [SEIZURE, INTELLECTUAL_DISABILITY]),
            task(2, "PMID:1", "SCN1A", [FOCAL_SEIZURE, INTELLECTUAL_DISABILITY]),
            task(3, "PMID:2", "STXBP1", [SEIZURE, INTELLECTUAL_DISABILITY]),
            task(4, "PMID:3", "MDGA2", [ARACHNODACTYLY]),
            task(5, "PMID:4", "MDGA2", [ARACHNODACTYLY, SEIZURE])]


@pytest.fixture(scope="module")
def index(hpo):
    return CaseIndex.build(hpo, _tasks())


def _lift_of(model, hpo, lift, term):
    return float(lift[0, model.column[hpo.index[term]]])


def test_the_lift_of_a_finding_is_its_share_among_the_cases_of_another_by_paper_shrunk_to_its_share(hpo, index):
    model = TermCooccurrence(hpo, index, prior=1.0)
    lift = model.log_lift(model.findings(hpo, [INTELLECTUAL_DISABILITY]))
    # 4 papers; intellectual disability in 2 (PMID:1 and 2), seizures in 3, both in 2:
    # (2 + 1 pseudo-paper x 2/4) / ((3 + 1) x 2/4)
    assert _lift_of(model, hpo, lift, SEIZURE) == pytest.approx(np.log(1.25), rel=1e-5)
    # never together: the lift is below 1, and no credit is negative
    assert _lift_of(model, hpo, lift, ARACHNODACTYLY) == 0.0
    # the finding itself: its full -log share
    assert _lift_of(model, hpo, lift, INTELLECTUAL_DISABILITY) == pytest.approx(-np.log(0.5), rel=1e-5)


def test_a_left_out_paper_no_longer_counts(hpo, index):
    model = TermCooccurrence(hpo, index, prior=1.0)
    left_out = index.cases_of_publication()["PMID:2"]
    lift = model.log_lift(model.findings(hpo, [INTELLECTUAL_DISABILITY]), left_out)
    # 3 papers: intellectual disability in 1, seizures in 2, both in 1: (1 + 1/3) / ((2 + 1) x 1/3)
    assert _lift_of(model, hpo, lift, SEIZURE) == pytest.approx(np.log(4 / 3), rel=1e-5)
    assert _lift_of(model, hpo, lift, INTELLECTUAL_DISABILITY) == pytest.approx(np.log(3), rel=1e-5)


def test_a_term_of_one_paper_stands_for_its_most_informative_ancestor_of_several(hpo, index):
    model = TermCooccurrence(hpo, index)
    assert model.column[hpo.index[FOCAL_SEIZURE]] == -1  # one paper's cases report it
    assert model.terms[model.stands_for[hpo.index[FOCAL_SEIZURE]]] == hpo.index[SEIZURE]
    # the two terms stand for one finding, counted once
    assert len(model.findings(hpo, [FOCAL_SEIZURE, SEIZURE])) == 1


def test_best_lift_takes_each_findings_best_term_of_each_row():
    lift = np.array([[0.0, 1.0, 3.0], [2.0, 0.5, 0.0]], np.float32)
    rows = sp.csr_matrix(np.array([[1, 1, 0], [0, 0, 0], [0, 1, 1]], np.float32))
    assert best_lift(lift, rows, np.array([2, -1, 0, 1])).tolist() == [[3.0, 0.0, 1.0, 0.0], [0.5, 0.0, 2.0, 0.0]]


def test_genes_get_credit_for_findings_that_go_with_theirs(hpo, index):
    # intellectual disability in 2 of 4 papers, seizures in 3, both in 2 (see above)
    with_seizures = np.log((2 + COOCCURRENCE_PRIOR * 0.5) / ((3 + COOCCURRENCE_PRIOR) * 0.5))
    extractor = FeatureExtractor(hpo, index, shortlist_per_source=30)
    case = Case((INTELLECTUAL_DISABILITY,))
    assert "MDGA2" not in hpo.gene_index  # known from its cases only: one reports seizures
    assert hpo.index[INTELLECTUAL_DISABILITY] in hpo.gene_closure[hpo.gene_index["MECP2"]].indices
    assert "MECP2" not in index.genes
    genes = np.array([extractor.universe_index[g] for g in ("MDGA2", "MECP2")])
    credit = extractor._cooccurrence(case, genes, None)
    assert credit["cooccurrence"] == pytest.approx([with_seizures, -np.log(0.5)], rel=1e-5)
    # an annotated gene with the finding itself gets its full credit; without cases, no case credit
    assert credit["case_cooccurrence"] == pytest.approx([with_seizures, 0.0], rel=1e-5)
    # without the paper of its case with seizures, nothing of MDGA2's goes with intellectual disability
    left_out = extractor._cooccurrence(case, genes, index.cases_of_publication()["PMID:4"])
    assert left_out["cooccurrence"] == pytest.approx([0.0, -np.log(2 / 3)], abs=1e-6)  # 2 of 3 papers
    assert left_out["case_cooccurrence"] == pytest.approx([0.0, 0.0], abs=1e-6)
    # the features of the shortlist are these
    feats = extractor.extract(case)
    where = np.flatnonzero(feats.candidates == genes[0])[0]
    assert feats.values[where, FEATURES.index("cooccurrence")] == pytest.approx(with_seizures, rel=1e-5)


def test_the_credit_table_is_the_shortlists_credit_bit_for_bit_and_built_once(hpo, index, monkeypatch, tmp_path):
    monkeypatch.setenv("RDRFT_CACHE", str(tmp_path))
    model = TermCooccurrence(hpo, index)
    rows = model.restrict(hpo.gene_closure)
    findings = model.findings(hpo, [INTELLECTUAL_DISABILITY, ARACHNODACTYLY])
    which = np.array([hpo.gene_index["MECP2"], -1, hpo.gene_index["FBN1"], hpo.gene_index["MECP2"]])
    exact = best_lift(model.log_lift(findings), rows, which)
    answer = CreditTable(model, rows).best(findings, which)
    assert answer.tobytes() == exact.tobytes()
    assert answer.flags.c_contiguous and exact.flags.c_contiguous  # sums over findings add alike
    assert exact[:, 1].tolist() == [0.0, 0.0] and exact.max() > 0
    # every term against every row, as the shortlist's computation gives it
    table = CreditTable(model, rows).table
    every = np.arange(rows.shape[0])
    assert table.tobytes() == best_lift(model.log_lift(np.arange(len(model.terms))), rows, every).tobytes()
    # written once, then read (another set of rows is another table)
    tables = sorted(p.name for p in (tmp_path / "cooccurrence").glob("credit-*"))
    assert len(tables) == 1
    CreditTable(TermCooccurrence(hpo, index), rows).table
    CreditTable(model, model.gene_terms).table
    assert len(list((tmp_path / "cooccurrence").glob("credit-*"))) == 2
    assert not table.flags.writeable


def test_the_model_is_built_once_per_index_and_then_read_from_the_cache(hpo, index, monkeypatch, tmp_path):
    monkeypatch.setenv("RDRFT_CACHE", str(tmp_path))
    built = TermCooccurrence(hpo, index)
    assert len(list((tmp_path / "cooccurrence").iterdir())) == 1
    read = TermCooccurrence(hpo, index)
    for name in ("terms", "stands_for", "alone"):
        assert np.array_equal(getattr(built, name), getattr(read, name))
    assert (built.pairs != read.pairs).nnz == 0
    # another index (a paper fewer) is another model
    TermCooccurrence(hpo, CaseIndex.build(hpo, _tasks()[:-1]))
    assert len(list((tmp_path / "cooccurrence").iterdir())) == 2
