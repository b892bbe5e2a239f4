import pytest

from rare_disease_rft.graders import DEFAULT_SCHEDULE, GRADERS, get_grader, parse_ranking, rank_of

# 25 approved symbols; the answer's 1-based position in this list is its rank
RANKED = ["FBN1", "TGFBR2", "TGFBR1", "SMAD3", "FBN2", "CBS", "COL3A1", "ACTA2", "MYH11", "SKI",
          "LOX", "EFEMP2", "ELN", "FLNA", "COL5A1", "COL5A2", "PLOD1", "TNXB", "ZNF469", "PRDM5",
          "SLC2A10", "NOTCH1", "MAT2A", "MFAP5", "LTBP3"]
ABSENT = "KMT2D"

# rank -> (top1, top5, top10, reciprocal rank, partial credit with the default schedule)
EXPECTED = {
    1: (1, 1, 1, 1.0, 1.0),
    2: (0, 1, 1, 0.5, 0.5),
    3: (0, 1, 1, 1 / 3, 0.35),
    4: (0, 1, 1, 0.25, 0.25),
    5: (0, 1, 1, 0.2, 0.25),
    6: (0, 0, 1, 1 / 6, 0.1),
    10: (0, 0, 1, 0.1, 0.1),
    11: (0, 0, 0, 1 / 11, 0.05),
    20: (0, 0, 0, 0.05, 0.05),
    21: (0, 0, 0, 1 / 21, 0.0),
    None: (0, 0, 0, 0.0, 0.0),
}
NAMES = ("top1", "top5", "top10", "reciprocal_rank", "partial_credit")


def answer_at(rank):
    return ABSENT if rank is None else RANKED[rank - 1]


@pytest.mark.parametrize("rank", list(EXPECTED))
def test_graders_on_a_plain_ranked_list(rank):
    scores = tuple(GRADERS[name]([RANKED], [answer_at(rank)])[0] for name in NAMES)
    assert scores == pytest.approx(EXPECTED[rank])
    assert rank_of(RANKED, answer_at(rank)) == rank


def test_graders_score_every_completion_of_a_batch():
    answers = [answer_at(r) for r in EXPECTED]
    assert GRADERS["reciprocal_rank"]([RANKED] * len(answers), answers) == pytest.approx([e[3] for e in EXPECTED.values()])


def test_default_schedule_is_the_documented_one():
    assert DEFAULT_SCHEDULE == ((1, 1.0), (2, 0.5), (3, 0.35), (5, 0.25), (10, 0.1), (20, 0.05))


def test_custom_schedule_and_bound_k():
    custom = get_grader("partial_credit", schedule=[(1, 1.0), (3, 0.3)])
    assert custom([RANKED] * 5, [answer_at(r) for r in (1, 2, 3, 4, None)]) == [1.0, 0.3, 0.3, 0.0, 0.0]
    top3 = get_grader("top_k", k=3)
    assert top3([RANKED] * 3, [answer_at(r) for r in (3, 4, None)]) == [1.0, 0.0, 0.0]
    assert (custom.__name__, top3.__name__) == ("partial_credit", "top_k")


def test_unknown_grader_names_the_choices():
    with pytest.raises(KeyError, match="unknown grader 'top2'; choose one of top1, top5"):
        get_grader("top2")


TEXTS = [
    'I think Marfan syndrome.\n<answer>["FBN1", "TGFBR2"]</answer>',  # answer rank 1, documented format
    "1. TGFBR2\n2. FBN1",  # rank 2, another valid format
    "I cannot tell from these findings.",  # unparseable
]


def test_graders_on_text_completions_with_the_trl_reward_signature():
    # TRL passes prompts, completion ids and every dataset column as keyword arguments
    kwargs = dict(prompts=["p"] * 3, completion_ids=[[1]] * 3, answer=[{"gene": "FBN1", "hgnc": "HGNC:3603"}] * 3)
    assert get_grader("top1")(TEXTS, **kwargs) == [1.0, 0.0, 0.0]
    assert get_grader("top5")(TEXTS, **kwargs) == [1.0, 1.0, 0.0]
    assert get_grader("reciprocal_rank")(TEXTS, **kwargs) == [1.0, 0.5, 0.0]
    assert get_grader("partial_credit")(TEXTS, **kwargs) == [1.0, 0.5, 0.0]
    assert get_grader("format")(TEXTS, **kwargs) == [1.0, 0.5, 0.0]


def test_graders_on_chat_completions():
    chats = [[{"role": "assistant", "content": text}] for text in TEXTS]
    assert get_grader("reciprocal_rank")(chats, answer=["fbn1"] * 3) == [1.0, 0.5, 0.0]


def test_candidates_restrict_the_genes_a_completion_may_name():
    completion = ['<answer>["CBS", "FBN1"]</answer>']
    assert get_grader("top1")(completion, answer=["FBN1"]) == [0.0]
    assert get_grader("top1")(completion, answer=["FBN1"], candidates=[["FBN1", "TGFBR2"]]) == [1.0]
    assert get_grader("reciprocal_rank")(completion, answer=["CBS"], candidates=[["FBN1", "TGFBR2"]]) == [0.0]


def test_aliases_and_previous_symbols_map_to_the_approved_symbol():
    assert get_grader("top1")(['<answer>["MLL2"]</answer>'], answer=["KMT2D"]) == [1.0]
    assert get_grader("reciprocal_rank")([["TGFBR2", "mll2"]], answer=["KMT2D"]) == [0.5]
    assert rank_of(["TGFBR2", "mll2"], {"gene": "KMT2D"}) == 2
    assert rank_of(["GBA1"], "GBA") == 1


@pytest.mark.parametrize("text, genes, fmt", [
    ('["FBN1", "TGFBR2"]', ["FBN1", "TGFBR2"], "json"),
    ('A first guess ["CBS"], then the final list ["TGFBR2", "FBN1"]', ["TGFBR2", "FBN1"], "json"),
    ('<think>FBN1?</think><answer>["FBN1", "TGFBR2"]</answer>', ["FBN1", "TGFBR2"], "answer_tag"),
    ("<answer>FBN1, TGFBR2</answer>", ["FBN1", "TGFBR2"], "comma"),
    ("<answer>FBN1</answer>", ["FBN1"], "comma"),
    ("1. FBN1\n2. TGFBR2\n3. fbn1", ["FBN1", "TGFBR2"], "numbered"),
    ("Most likely:\n1. **FBN1** (fibrillin 1)\n2) TGFBR2.\n- CBS", ["FBN1", "TGFBR2", "CBS"], "numbered"),
    ("These findings suggest\nFBN1, NOTAGENE, fbn1, MLL2, TGFBR2.", ["FBN1", "KMT2D", "TGFBR2"], "comma"),
    ("FBN1", ["FBN1"], "comma"),
])
def test_parser_reads_every_accepted_format(text, genes, fmt):
    parsed = parse_ranking(text)
    assert (parsed.genes, parsed.format_ok, parsed.format) == (genes, True, fmt)


@pytest.mark.parametrize("text", [
    "", "I cannot tell.", "Done", '<answer>["FBN1"', '["NOTAGENE", "XYZ99Q"]', "<answer></answer>",
])
def test_broken_output_is_not_ok(text):
    parsed = parse_ranking(text)
    assert (parsed.genes, parsed.format_ok, parsed.format) == ([], False, "none")


def test_parser_keeps_only_known_genes_when_given():
    assert parse_ranking('["FBN1", "CBS", "SMAD3"]', known={"CBS", "SMAD3"}).genes == ["CBS", "SMAD3"]


def test_an_empty_ranking_scores_zero():
    assert [GRADERS[name]([[]], ["FBN1"]) for name in NAMES] == [[0.0]] * len(NAMES)
