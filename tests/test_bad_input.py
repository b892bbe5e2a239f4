"""Bad input, as a new user gives it, thrown at the command line and at the app (issue 18).

Every case asserts the exit code, the one line the user reads, and that nothing the user gave (an
input, an earlier output) was changed. Built-in rankers and a small untrained policy directory keep
each case to a second or two.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from conftest import phenopacket, shown, values

from rare_disease_rft.cli import main

MARFAN = "HP:0001166,HP:0001083,HP:0002616,HP:0001519"


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def error_line(capsys, *argv: str) -> str:
    """The one line a failing command prints (exit 2, nothing on stdout, no traceback)."""
    code, out, err = run(capsys, *argv)
    assert code == 2, (code, out, err)
    assert err.count("\n") == 1 and err.endswith("\n"), err
    assert "Traceback" not in err
    return err.strip()


def contents(*paths: Path) -> dict[Path, bytes | None]:
    """What the files hold now (None: absent), to compare after a command."""
    return {p: p.read_bytes() if p.is_file() else None for p in paths}


# ------------------------------------------------------------------------------ model directories
@pytest.fixture(scope="module")
def policy_dir(tmp_path_factory, hpo):
    """A real (untrained) policy model directory: weights, case index and config, as `rdrft train` writes them."""
    from rare_disease_rft.rankers.case_index import CaseIndex
    from rare_disease_rft.training.policy_net import PolicyNet, save_policy
    from rare_disease_rft.tasks import Answer, Task

    out = tmp_path_factory.mktemp("policy")
    tasks = [Task("c1", ["HP:0001166", "HP:0001083"], answer=Answer("FBN1"), source={"pmid": "PMID:1"}),
             Task("c2", ["HP:0001250"], answer=Answer("STXBP1"), source={"pmid": "PMID:2"})]
    CaseIndex.build(hpo, tasks).save(out)
    save_policy(out, PolicyNet(hidden=8, layers=1))
    (out / "config.json").write_text(json.dumps({"kind": "policy", "name": "tiny", "model": {
        "hidden": 8, "layers": 1, "shortlist_per_source": 20}}))
    return out


@pytest.fixture
def broken_policy(policy_dir, tmp_path):
    """A copy of the policy directory, for a test to damage."""
    return Path(shutil.copytree(policy_dir, tmp_path / "model"))


def test_a_sound_policy_directory_ranks(capsys, policy_dir):
    code, out, _ = run(capsys, "rank", "--model", policy_dir, "--present", MARFAN, "--top", "2")
    assert code == 0 and len(out.splitlines()) == 3


def _truncate(folder: Path) -> None:
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])


def _wrong_shapes(folder: Path) -> None:
    from rare_disease_rft.training.policy_net import PolicyNet, save_policy

    save_policy(folder, PolicyNet(hidden=4, layers=1))


@pytest.mark.parametrize("damage, message", [
    (_truncate, "cannot be loaded as a policy model: Error while deserializing header: incomplete metadata, "
                "file not fully covered"),
    (lambda d: (d / "model.safetensors").write_bytes(b""), "cannot be loaded as a policy model: Error while "
                                                           "deserializing header: header too small"),
    (_wrong_shapes, "cannot be loaded as a policy model: model.safetensors holds 1 hidden layers of 4 units, "
                    "config.json says 1 of 8"),
    (lambda d: (d / "model.safetensors").unlink(), "cannot be loaded as a policy model: No such file"),
    (lambda d: (d / "config.json").write_text("[1, 2]"), "config.json holds a JSON list, not the settings "
                                                         "object a model directory has"),
    (lambda d: (d / "config.json").write_text('{"kind": "policy"}'), "cannot be loaded as a policy model: "
                                                                     "'model' is missing (is it a complete model "
                                                                     "directory written by `rdrft train`?)"),
    (lambda d: (d / "config.json").write_text('{"kind": "policy", "model": "big"}'),
     "cannot be loaded as a policy model: string indices must be integers"),
    (lambda d: (d / "config.json").write_text('{"kind": ["policy"]}'), "config.json names an unknown model "
                                                                       "kind '['policy']'"),
])
@pytest.mark.parametrize("command", [["rank", "--present", MARFAN], ["evaluate", "--tasks", "TASKS"]])
def test_a_broken_model_directory_is_one_line(capsys, broken_policy, tmp_path, damage, message, command):
    damage(broken_policy)
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text(json.dumps({"id": "t1", "present": MARFAN.split(","), "answer": {"gene": "FBN1"}}) + "\n")
    before = contents(tasks, *broken_policy.iterdir())
    line = error_line(capsys, command[0], "--model", broken_policy, *[str(tasks) if a == "TASKS" else a
                                                                       for a in command[1:]])
    assert line.startswith(f"rdrft {command[0]}: error: {broken_policy}") and message in line, line
    assert contents(*before) == before


# ------------------------------------------------------------------------------ remote code
EVIL_CONFIGURATION = """\
from pathlib import Path
Path({marker!r}).write_text("the model directory ran its code")
from transformers import PretrainedConfig
class EvilConfig(PretrainedConfig):
    model_type = "evil"
"""


@pytest.fixture
def evil_model(tmp_path):
    """An LLM model directory whose base model ships Python that leaves a marker file when it runs."""
    marker = tmp_path / "RAN"
    base = tmp_path / "base"
    base.mkdir()
    (base / "config.json").write_text(json.dumps({"model_type": "evil", "auto_map": {
        "AutoConfig": "configuration_evil.EvilConfig", "AutoModelForCausalLM": "configuration_evil.EvilConfig"}}))
    (base / "configuration_evil.py").write_text(EVIL_CONFIGURATION.format(marker=str(marker)))
    model = tmp_path / "llm"
    model.mkdir()

    def write(asks_to_run_code: bool) -> Path:
        """The directory, its config asking (or not) for its base model's code (model.trust_remote_code)."""
        (model / "config.json").write_text(json.dumps({
            "kind": "llm", "name": "evil", "shortlist": {"ranker": "likelihood", "size": 4},
            "model": {"id": str(base), "dtype": "float32", "trust_remote_code": asks_to_run_code}}))
        return model

    write.marker = marker
    return write


REMOTE_CODE = ("asks to run Python code shipped with its base model (model.trust_remote_code); a model "
               "directory never runs code unless you pass --trust-remote-code, and only for a model whose source "
               "you trust")


@pytest.mark.parametrize("command", [
    ["rank", "--present", MARFAN], ["evaluate", "--tasks", "TASKS"], ["benchmark", "--tasks", "TASKS"], ["app"]])
def test_a_model_directory_that_asks_to_run_its_code_is_refused(capsys, evil_model, tmp_path, command,
                                                                 monkeypatch):
    import app.server

    # rdrft app serves in its own process: reaching the server would block the test, so it fails it
    monkeypatch.setattr(app.server, "serve", lambda *args: pytest.fail("rdrft app started a server"))
    model = evil_model(asks_to_run_code=True)
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text(json.dumps({"id": "t1", "present": ["HP:0001250"], "answer": {"gene": "STXBP1"}}) + "\n")
    option = "--models" if command[0] == "benchmark" else "--model"
    argv = [command[0], option, model, *[str(tasks) if a == "TASKS" else a for a in command[1:]]]
    line = error_line(capsys, *argv)
    assert line.endswith(f"{model}/config.json {REMOTE_CODE}"), line
    assert not evil_model.marker.exists()


def test_a_model_directory_that_says_no_to_remote_code_still_cannot_run_it(capsys, evil_model):
    from transformers.utils import logging

    verbosity = logging.get_verbosity()
    logging.set_verbosity_error()  # its warning on the unknown model type is not ours to test
    try:
        model = evil_model(asks_to_run_code=False)
        line = error_line(capsys, "rank", "--model", model, "--present", MARFAN)
    finally:
        logging.set_verbosity(verbosity)
    assert line.startswith(f"rdrft rank: error: {model} cannot be loaded as a llm model: ")
    assert not evil_model.marker.exists()


def test_only_the_command_line_flag_lets_a_base_model_run_its_code(capsys, evil_model, monkeypatch):
    import rare_disease_rft.llm.models as models

    asked = []

    def load_tokenizer(model_id, trust_remote_code=False):
        asked.append(trust_remote_code)
        raise OSError("stopped here")

    monkeypatch.setattr(models, "load_tokenizer", load_tokenizer)
    model = evil_model(asks_to_run_code=True)
    assert "stopped here" in error_line(capsys, "rank", "--model", model, "--present", MARFAN, "--trust-remote-code")
    evil_model(asks_to_run_code=False)
    assert "stopped here" in error_line(capsys, "rank", "--model", model, "--present", MARFAN)
    assert asked == [True, False]  # the flag decides, never the directory


# ------------------------------------------------------------------------------ outputs
def task_line(task_id="t1", present=("HP:0001166", "HP:0001083"), gene="FBN1", **fields) -> str:
    return json.dumps({"id": task_id, "present": list(present), "answer": {"gene": gene}, **fields})


@pytest.fixture
def tasks_file(tmp_path):
    path = tmp_path / "tasks.jsonl"
    path.write_text(task_line("t1") + "\n" + task_line("t2", ["HP:0001250", "HP:0001263"], "STXBP1") + "\n")
    return path


@pytest.fixture
def notes(tmp_path):
    """A folder of clinical notes and an earlier output beside it."""
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "a.txt").write_text("The boy had seizures and hypotonia.")
    (folder / "b.txt").write_text("She has arachnodactyly.")
    (tmp_path / "earlier.jsonl").write_text('{"doc": "a", "concepts": []}\n')
    return folder


def test_concepts_never_writes_over_its_input(capsys, notes, tmp_path):
    note = notes / "a.txt"
    link = tmp_path / "link.jsonl"
    link.symlink_to(note)
    before = contents(note, notes / "b.txt")
    for out, given in ((note, note), (link, note), (notes / "b.txt", notes)):
        line = error_line(capsys, "concepts", given, "--jsonl", out)
        assert line == f"rdrft concepts: error: --jsonl {out} is also an input ({given}): write the output " \
                       "elsewhere (nothing was written)"
    assert contents(*before) == before and link.is_symlink()


def test_a_failed_concepts_run_leaves_an_earlier_output_as_it_was(capsys, tmp_path, notes):
    earlier = tmp_path / "earlier.jsonl"
    unreadable = tmp_path / "latin1.txt"
    unreadable.write_bytes("Le garçon a des crises.".encode("latin-1"))
    before = contents(earlier)
    code, _, err = run(capsys, "concepts", unreadable, "--jsonl", earlier)
    assert code == 2 and err.splitlines()[-1] == f"rdrft concepts: error: no readable document in {unreadable}"
    assert contents(earlier) == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary file left


def test_evaluate_and_benchmark_never_write_over_the_task_file_or_a_model(capsys, tasks_file, policy_dir):
    before = contents(tasks_file, *policy_dir.iterdir())
    assert error_line(capsys, "evaluate", "--model", "likelihood", "--tasks", tasks_file, "--json", tasks_file) == \
        f"rdrft evaluate: error: --json {tasks_file} is also an input ({tasks_file}): write the output elsewhere " \
        "(nothing was written)"
    card = policy_dir / "MODEL_CARD.md"
    card.write_text("# the model's card\n")
    line = error_line(capsys, "benchmark", "--models", f"likelihood,{policy_dir}", "--tasks", tasks_file,
                      "--plot", card.with_suffix(".png"), "--json", card)
    assert line == f"rdrft benchmark: error: --json {card} is also an input ({policy_dir}): write the output " \
                   "elsewhere (nothing was written)"
    assert contents(*before) == before and card.read_text() == "# the model's card\n"


def test_prepare_never_writes_over_a_source_or_an_earlier_split(capsys, tmp_path):
    source = tmp_path / "packets"
    source.mkdir()
    (source / "report.json").write_text(json.dumps(phenopacket()))  # a patient's file, named so by its lab
    split_dir = tmp_path / "split"
    split_dir.mkdir()
    (split_dir / "train.jsonl").write_text(task_line() + "\n")
    before = contents(source / "report.json", split_dir / "train.jsonl")
    assert error_line(capsys, "prepare", "phenopackets", source, "--out", source) == \
        f"rdrft prepare: error: --out {source / 'report.json'} is also an input ({source}): write the output " \
        "elsewhere (nothing was written)"
    assert error_line(capsys, "prepare", "phenopackets", source, "--out", split_dir, "--no-split") == \
        f"rdrft prepare: error: --out {split_dir} holds train.jsonl of an earlier split, which the new tasks.jsonl " \
        "would not match; choose another --out for --no-split (nothing was written)"
    assert error_line(capsys, "prepare", "phenopackets", source, "--out", split_dir / "train.jsonl") == \
        f"rdrft prepare: error: --out {split_dir / 'train.jsonl'} is a file, not a folder; give a folder for the " \
        "output files"
    assert contents(*before) == before and sorted(p.name for p in split_dir.iterdir()) == ["train.jsonl"]


def test_an_output_set_is_moved_into_place_only_once_every_file_is_written(tmp_path):
    from rare_disease_rft.resources import atomic_write_files

    first, second = tmp_path / "tasks.jsonl", tmp_path / "report.json"
    first.write_text("earlier\n")
    with pytest.raises(TypeError):
        atomic_write_files({first: b"new\n", second: "not bytes"})
    assert first.read_text() == "earlier\n" and not second.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tasks.jsonl"]


def test_two_writers_of_one_cache_file_never_share_a_temporary_file(tmp_path):
    """Two first runs filling one cache entry at once (the HPO arrays, the feature cache) each
    write their own temporary file; both finish, and the entry is one writer's whole file."""
    import threading

    from rare_disease_rft.resources import atomic_write_bytes

    target = tmp_path / "arrays.npz"
    both_writing = threading.Barrier(2)
    original = Path.write_bytes

    def slow_write(path, data):
        original(path, data)
        both_writing.wait(timeout=10)  # both temporary files are written before either is moved

    errors = []

    def writer(data):
        try:
            atomic_write_bytes(target, data)
        except Exception as err:  # noqa: BLE001 - the test reports any
            errors.append(err)

    Path.write_bytes = slow_write
    try:
        threads = [threading.Thread(target=writer, args=(bytes([n]) * 1000,)) for n in (1, 2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        Path.write_bytes = original
    assert errors == []
    assert target.read_bytes() in (b"\x01" * 1000, b"\x02" * 1000)
    assert [p.name for p in tmp_path.iterdir()] == ["arrays.npz"]


# ------------------------------------------------------------------------------ one line, not a traceback
@pytest.mark.parametrize("argv, message", [
    (["rank", "--model", "likelihood", "--present", MARFAN, "--threads", "-1"], "--threads must be at least 1, got -1"),
    (["rank", "--model", "likelihood", "--present", MARFAN, "--threads", "0"], "--threads must be at least 1, got 0"),
    (["evaluate", "--model", "likelihood", "--tasks", "TASKS", "--threads", "-1"], "--threads must be at least 1, got -1"),
    (["evaluate", "--model", "likelihood", "--tasks", "TASKS", "--batch-size", "0"],
     "--batch-size must be at least 1, got 0"),
    (["benchmark", "--models", "likelihood", "--tasks", "TASKS", "--batch-size", "-1"],
     "--batch-size must be at least 1, got -1"),
    (["evaluate", "--model", "likelihood", "--tasks", "TASKS", "--json", "DIR"], "--json DIR is a folder; give a file name"),
    (["benchmark", "--models", "likelihood", "--tasks", "TASKS", "--plot", "DIR"],
     "--plot DIR is a folder; give a file name"),
    (["benchmark", "--models", "likelihood", "--tasks", "TASKS", "--plot", "DIR/top.txt"],
     "--plot DIR/top.txt: end the name with a picture format matplotlib writes (.png, .pdf, .svg, ...), not 'txt'"),
    (["evaluate", "--model", "likelihood", "--tasks", "TASKS", "--json", "TASKS/m.json"],
     "--json TASKS/m.json: TASKS is a file, not a folder"),
    (["concepts", "DIR", "--jsonl", "DIR"], "--jsonl DIR is a folder; give a file name"),
    (["evaluate", "--model", "likelihood", "--tasks", "DIR/missing.jsonl", "--json", "/sys/m.json"],
     "--json /sys/m.json: cannot write in /sys (Permission denied)"),
    (["prepare", "texts", "DIR", "--answers", "TASKS", "--out", "TASKS"], "--out TASKS is a file, not a folder"),
    (["index", "--model", "POLICY", "--tasks", "TASKS", "--out", "TASKS"],
     "TASKS exists and is not an empty folder; choose another --out"),
])
def test_bad_numbers_and_output_paths_are_one_line_before_any_work(capsys, tmp_path, tasks_file, policy_dir, argv,
                                                                   message, monkeypatch):
    import rare_disease_rft.hpo

    if "/sys/m.json" in argv and _writable("/sys"):
        pytest.skip("/sys is writable here")
    # no work before the check: loading the knowledge base would be the first of it
    monkeypatch.setattr(rare_disease_rft.hpo, "_load_release", lambda folder: pytest.fail("work began"))
    names = {"TASKS": str(tasks_file), "DIR": str(tmp_path), "POLICY": str(policy_dir)}

    def fill(text):
        for name, value in names.items():
            text = text.replace(name, value)
        return text

    before = contents(tasks_file)
    line = error_line(capsys, *map(fill, argv))
    assert line.split(": error: ", 1)[1].startswith(fill(message)), line
    assert contents(tasks_file) == before


def _writable(folder: str) -> bool:
    import tempfile

    try:
        with tempfile.TemporaryFile(dir=folder):
            return True
    except OSError:
        return False


def test_a_task_file_that_is_not_utf8_is_named_with_its_line(capsys, tmp_path):
    path = tmp_path / "tasks.jsonl"
    path.write_bytes((task_line("t1") + "\n").encode() + b'{"id": "t\xe9", "present": ["HP:0001250"]}\n')
    assert error_line(capsys, "evaluate", "--model", "likelihood", "--tasks", path) == \
        f"rdrft evaluate: error: {path}:2: not UTF-8 text (byte 0xe9 at column 10); save the task file as UTF-8"


# ------------------------------------------------------------------------------ scores are never silently wrong
OBSOLETE, REPLACEMENT = "HP:0000057", "HP:0008665"  # obsolete "Clitoromegaly" -> Clitoral hypertrophy


def test_evaluate_maps_obsolete_ids_and_says_what_it_could_not_use(capsys, tmp_path):
    current, obsolete, unusable = (tmp_path / f"{name}.jsonl" for name in ("current", "obsolete", "unusable"))
    current.write_text(task_line("t1", [REPLACEMENT, "HP:0001166"]) + "\n")
    obsolete.write_text(task_line("t1", [OBSOLETE, "HP:0001166", "HP:9999999"]) + "\n")
    unusable.write_text(task_line("t1", [REPLACEMENT, "HP:0001166"]) + "\n" + task_line("t2", ["HP:9999999"]) + "\n")
    scores = {}
    for path in (current, obsolete, unusable):
        before = contents(path)
        code, out, err = run(capsys, "evaluate", "--model", "likelihood", "--tasks", path, "--json", path.with_suffix(".json"))
        assert code == 0 and contents(path) == before
        scores[path.stem] = json.loads(path.with_suffix(".json").read_text()), out, err
    metrics, _, err = scores["obsolete"]
    assert metrics["mrr"] == scores["current"][0]["mrr"] and metrics["errors"] == 0  # mapped, not a miss
    assert metrics["task_terms"] == {"mapped": {f"{OBSOLETE} -> {REPLACEMENT}": 1}, "left_out": {"HP:9999999": 1},
                                     "tasks_without_usable_terms": 0}
    assert f"note: {obsolete}: obsolete or alternative ids mapped to the current term (1 ids, 1 uses): " \
           f"{OBSOLETE} -> {REPLACEMENT}" in err
    assert "cannot use, left out (1 ids, 1 uses): HP:9999999" in err
    metrics, out, err = scores["unusable"]
    assert (metrics["n"], metrics["errors"], metrics["first_error"]) == (2, 1, "no present HPO term the release knows")
    assert metrics["mrr"] == scores["current"][0]["mrr"] / 2  # the unusable case is a miss, said so
    assert "likelihood: 1 of the 2 cases were not ranked and count as misses (first: no present HPO term the " \
           "release knows)" in out
    assert "1 of the 2 tasks have no present HPO term the release knows (e.g. t2): they are not ranked and count " \
           "as misses" in err


@pytest.mark.parametrize("age, problem", [(300, "is 300 years, outside 0-130"), (-5, "is -5 years, outside 0-130"),
                                          ("4", "is '4', not a number"), (float("nan"), "is nan, not a number")])
def test_an_impossible_age_in_a_task_file_is_named_with_file_and_line(capsys, tmp_path, age, problem):
    path = tmp_path / "tasks.jsonl"
    path.write_text(task_line("t1") + "\n" + task_line("t2", age_years=age) + "\n")
    assert error_line(capsys, "evaluate", "--model", "likelihood", "--tasks", path) == \
        f"rdrft evaluate: error: {path}:2: 'age_years' {problem}; give the age in years or null"


@pytest.mark.parametrize("age", ["300", "-5", "nan"])
def test_an_impossible_age_on_the_command_line_is_refused(capsys, age):
    line = error_line(capsys, "rank", "--model", "likelihood", "--present", MARFAN, "--age", age)
    assert line.startswith("rdrft rank: error: --age is ") and line.endswith("; give the patient's age in years")


def test_a_phenopacket_age_no_patient_has_is_left_out_and_its_sex_read_as_written(capsys, tmp_path, hpo):
    from rare_disease_rft.inputs.phenopackets import load_phenopacket, read_patient

    packet = phenopacket(subject={"id": "p1", "sex": "female", "timeAtLastEncounter": {"age": {"iso8601duration": "P300Y"}}})
    patient = read_patient(load_phenopacket(json.dumps(packet).encode()), hpo)
    assert (patient.sex, patient.age_years) == ("FEMALE", None)
    assert "The age given is 300 years, outside 0-130: left out." in patient.notes
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "p.json").write_text(json.dumps(packet))
    assert run(capsys, "prepare", "phenopackets", tmp_path / "in", "--out", tmp_path / "out", "--no-split")[0] == 0
    task = json.loads((tmp_path / "out" / "tasks.jsonl").read_text())
    assert (task["sex"], task["age_years"]) == ("FEMALE", None)


def test_a_phenopacket_whose_excluded_flag_is_a_string_is_skipped_with_the_field_named(capsys, tmp_path):
    packet = phenopacket()
    packet["phenotypicFeatures"][0]["excluded"] = "false"
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "p.json").write_text(json.dumps(packet))
    assert run(capsys, "prepare", "phenopackets", tmp_path / "in", "--out", tmp_path / "out", "--no-split")[0] == 0
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["tasks"] == 0 and "phenotypicFeatures[0].excluded is a string, expected true or false" in \
        report["skipped"][0]["reason"]


def test_rank_never_writes_its_rankings_over_its_patients(capsys, tmp_path, tasks_file):
    packets = tmp_path / "packets"
    packets.mkdir()
    (packets / "PMID_111_STX_1.json").write_text(json.dumps(phenopacket()))  # named by its id, as ranked files are
    before = contents(tasks_file, packets / "PMID_111_STX_1.json")
    assert error_line(capsys, "rank", "--model", "likelihood", "--tasks", tasks_file, "--out", tasks_file) == \
        f"rdrft rank: error: --out {tasks_file} is also an input ({tasks_file}): write the output elsewhere " \
        "(nothing was written)"
    assert error_line(capsys, "rank", "--model", "likelihood", "--phenopackets", packets, "--out", f"{packets}/") == \
        f"rdrft rank: error: --out {packets}/ and the input {packets} overlap: a patient's file could overwrite a " \
        "phenopacket; write the rankings to a folder of their own (nothing was written)"
    assert contents(*before) == before and [p.name for p in packets.iterdir()] == ["PMID_111_STX_1.json"]


# ------------------------------------------------------------------------------ the app: shared links, files, models
EVIL = "https://evil.example"
# What the page's Markdown (remark-gfm) makes a link: [text](target) and ![alt](target), read from
# the Markdown; bare addresses and e-mails, found in the text once escapes are read (its regexes)
_LINK = re.compile(r"(?<!\\)!?\[(?:[^\]\\]|\\.)*\]\(([^)\s]*)")
_BARE = re.compile(r"(?:https?://|www(?=\.))[-.\w]+[^ \t\r\n]*|[-.\w+]+@[-\w]+(?:\.[-\w]+)+", re.IGNORECASE)


def live_markdown(at) -> list[str]:
    """Every link, image or linked address on the page that leads to the attacker's site: none may."""
    texts = []
    for kind in ("markdown", "error", "warning", "info", "success", "caption"):
        texts += [e.value for e in at.get(kind)]
    texts += [e.label for e in at.get("expander")] + [o for r in at.get("radio") for o in r.options]
    found = [t for text in texts for t in _LINK.findall(text) + _BARE.findall(shown(text))]
    return [target for target in found if "evil" in target]


@pytest.mark.parametrize("given", [f"[text]({EVIL})", f"![x]({EVIL}/pixel.png)", f"{EVIL}/phish", "www.evil.example",
                                   f"<{EVIL}>", "admin@evil.example", "HTTPS://EVIL.EXAMPLE"])
def test_a_shared_link_cannot_put_a_live_link_or_an_image_on_the_page(open_app, given):
    at = open_app(present=f"HP:0001166,{given}", excluded=given)
    assert at.main.error, "the bad id is named"
    assert live_markdown(at) == []
    at.text_input(key="search").set_value(given).run()
    assert live_markdown(at) == []


class IndexedStub:
    """A ranker as a model directory with an indexed task file makes it: gene symbols and PMIDs from that file."""

    name = f"[model]({EVIL})"
    training_genes = frozenset()
    indexed_cases = frozenset()

    def __init__(self, hpo):
        from rare_disease_rft.rankers.knowledge import LikelihoodRanker

        self.likelihood = LikelihoodRanker(hpo)

    def rank(self, case):
        from rare_disease_rft.rankers import Ranking

        ranking = self.likelihood.rank(case)
        return Ranking([f"[FBN1]({EVIL})", *ranking.genes[1:]], ranking.scores)

    def rank_many(self, cases):
        return [self.rank(c) for c in cases]

    def similar_cases(self, case, gene, k=3):
        return [{"case_id": f"![c]({EVIL}/c.png)", "pmid": f"PMID:1]({EVIL})", "similarity": 0.9}]

    def case_annotations(self, gene):
        return None

    def describe(self):
        return {"name": self.name, "kind": "policy"}


def test_genes_pmids_and_a_model_card_from_a_model_directory_are_shown_as_text(open_app, hpo, tmp_path, monkeypatch,
                                                                              fresh_model_cache):
    import rare_disease_rft.registry

    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"kind": "policy", "name": f"[ours]({EVIL})", "model": {}}))
    card = f"# Card\n\n![tracker]({EVIL}/pixel.png) [details]({EVIL}/phish)\n"
    (model / "MODEL_CARD.md").write_text(card)
    monkeypatch.setattr(rare_disease_rft.registry, "load_ranker", lambda name, **_: IndexedStub(hpo))
    at = open_app(str(model), present=MARFAN)
    assert [e.label for e in at.expander][0] == "1. \\[FBN1\\]\\(https:\u2060//evil.example\\)"
    assert live_markdown(at) == []
    assert [c.value for c in at.sidebar.text] == [card.rstrip("\n")]  # the card, as text


# ------------------------------------------------------------------------------ the app and the command line agree
SEIZURE, NERVOUS_SYSTEM = "HP:0001250", "HP:0000707"  # "Abnormality of the nervous system" is above seizure
TIED = "HP:0001250,HP:0001263,HP:0001252"  # seizure, developmental delay, hypotonia: many genes fit all three


def cli_notes(capsys, present, excluded=None) -> dict:
    argv = ["rank", "--model", "likelihood", "--present", present, "--json", "--top", "3"]
    code, out, err = run(capsys, *argv, *(["--excluded", excluded] if excluded else []))
    assert code == 0, err
    return json.loads(out)


def test_a_term_given_both_ways_is_present_with_one_note_in_the_cli_and_the_app(capsys, open_app):
    ranking = cli_notes(capsys, MARFAN, "HP:0001166")
    note = "HP:0001166 (Arachnodactyly) was given both present and excluded; it is used as present"
    assert note in ranking["notes"] and "HP:0001166" in ranking["present"] and not ranking["excluded"]
    at = open_app(present=MARFAN, excluded="HP:0001166")
    assert at.radio(key="status_HP:0001166").value == "present"
    assert note in values(at.main.info)
    at = open_app()  # the same through the search box: added present, then as excluded
    for status in ("present", "excluded"):
        at.text_input(key="search").set_value("HP:0001166").run()
        at.button(key=f"add_{status}").click().run()
    assert at.radio(key="status_HP:0001166").value == "present"
    assert note in values(at.main.info)
    at.radio(key="status_HP:0001166").set_value("excluded").run()  # the clinician's own choice stands
    assert at.radio(key="status_HP:0001166").value == "excluded"
    assert note not in values(at.main.info)


def test_a_parameter_given_twice_in_a_link_counts_both_times(open_app):
    at = open_app(present=["HP:0001166", "HP:0001083"])
    assert {r.key for r in at.radio if r.key.startswith("status_")} == {"status_HP:0001166", "status_HP:0001083"}


def test_an_age_no_patient_has_is_left_out_with_a_note_not_blanked_in_silence(open_app):
    at = open_app()
    at.text_area(key="note_text").set_value("A 150-year-old man with arachnodactyly and ectopia lentis.")
    at.button(key="find_terms").click().run()
    assert at.number_input(key="age").value is None
    assert "150 years" not in at.main.success[0].value
    assert "The age given is 150 years, outside 0-130: left out." in values(at.main.info)


# ------------------------------------------------------------------------------ uninformative input is called so
NO_PHENOTYPE = ("no present term is a phenotypic abnormality (HP:0000005 (Mode of inheritance), HP:0000001 (All): "
                "outside HP:0000118); a ranking on them would carry no information: add at least one present phenotype")


def test_only_terms_outside_the_phenotype_branch_give_no_ranking(capsys, open_app):
    assert error_line(capsys, "rank", "--model", "likelihood", "--present", "HP:0000005,HP:0000001") == \
        f"rdrft rank: error: {NO_PHENOTYPE}"
    at = open_app(present="HP:0000005,HP:0000001")
    assert values(at.main.error) == [f"Cannot rank yet: {NO_PHENOTYPE}."]
    assert not [d for d in at.main.dataframe if "gene" in d.value.columns]


def test_an_excluded_ancestor_of_a_present_term_is_called_a_contradiction(capsys, open_app):
    note = (f"{NERVOUS_SYSTEM} (Abnormality of the nervous system) was given as excluded, but {SEIZURE} (Seizure) is "
            f"present and is a kind of it: the input contradicts itself, so {NERVOUS_SYSTEM} is not used as excluded")
    ranking = cli_notes(capsys, SEIZURE, NERVOUS_SYSTEM)
    assert note in ranking["notes"] and ranking["excluded"] == []
    at = open_app(present=SEIZURE, excluded=NERVOUS_SYSTEM)
    assert note in values(at.main.info)


def test_a_tie_at_the_top_is_shown_with_its_size_not_as_an_alphabetical_ranking(capsys, open_app):
    code, out, err = run(capsys, "rank", "--model", "likelihood", "--present", TIED, "--top", "3")
    header, first = out.splitlines()[:2]
    tied = int(first.split()[3])
    assert code == 0 and header.split()[:4] == ["rank", "gene", "score", "tied"] and tied > 100
    note = (f"{tied} genes share the top score: the phenotypes do not tell them apart, and their order "
            "(alphabetical) is not a ranking. More specific phenotypes, or candidate genes, narrow it")
    assert f"note: {note}" in err.splitlines()
    ranking = cli_notes(capsys, TIED)
    assert ranking["tied_at_top"] == tied and [g["tied"] for g in ranking["genes"]] == [tied] * 3
    assert note in ranking["notes"]
    at = open_app(present=TIED)
    frame = next(d.value for d in at.main.dataframe if "gene" in d.value.columns)
    assert (frame["genes with this score"] == tied).all()
    assert note in values(at.main.info)
    marfan = cli_notes(capsys, MARFAN)  # a ranking that tells its genes apart says nothing of ties
    assert marfan["tied_at_top"] == 1 and not any("share the top score" in n for n in marfan["notes"])


# ------------------------------------------------------------------------------ small ones
ARABIC = "HP:\u0660\u0660\u0660\u0661\u0662\u0665\u0660"  # HP:0001250 in Arabic-Indic digits


def test_an_id_in_other_digits_is_called_no_hpo_id_not_a_newer_term(capsys, open_app, hpo):
    message = f"'{ARABIC}' is not an HPO id (expected HP: followed by 7 digits 0-9, e.g. HP:0001250)"
    assert error_line(capsys, "rank", "--model", "likelihood", "--present", f"HP:0001166,{ARABIC}") == \
        f"rdrft rank: error: {message}"
    assert values(open_app(present=f"HP:0001166,{ARABIC}").main.error) == [message]
    assert hpo.resolve(ARABIC).id is None


def test_prepare_tells_invalid_ids_from_terms_the_release_does_not_know(capsys, tmp_path, hpo):
    packet = phenopacket()
    packet["phenotypicFeatures"] += [{"type": {"id": "HP:9999999"}}, {"type": {"id": ARABIC}},
                                     {"type": {"id": "seizures"}}]
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "p.json").write_text(json.dumps(packet))
    code, out, _ = run(capsys, "prepare", "phenopackets", tmp_path / "in", "--out", tmp_path / "out", "--no-split")
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert code == 0 and report["tasks"] == 1
    assert report["terms_unknown_to_hpo_release_dropped"] == {"HP:9999999": 1}
    assert report["invalid_ids_dropped"] == {ARABIC: 1, "seizures": 1}
    lines = out.splitlines()
    assert f"  1 uses of 1 terms HPO {hpo.version} does not know (newer than the release, or obsolete without a " \
           "replacement) were dropped (listed in report.json)" in lines
    assert f"  2 uses of 2 ids that are not HPO ids (e.g. '{ARABIC}') were dropped (listed in report.json)" in lines


def test_a_huge_or_strange_argument_is_echoed_as_one_short_printable_line(capsys, open_app):
    huge = "HP:" + "9" * 100_000
    line = error_line(capsys, "rank", "--model", "likelihood", "--present", huge)
    assert len(line) < 500 and "characters left out" in line and line.endswith("e.g. HP:0001250)")
    line = error_line(capsys, "rank", "--model", "likelihood", "--present", "HP:0001250\x1b[2J\x07\nrm -rf")
    assert "\x1b" not in line and "\x07" not in line and "\\x1b[2J\\x07 rm -rf" in line
    with pytest.raises(SystemExit) as exit_:  # argparse's own message quotes the argument too
        main(["rank", "--sex", "x" * 100_000])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and max(map(len, err.splitlines())) < 500 and "characters left out" in err
    message = values(open_app(present=huge).main.error)[0]
    assert len(message) < 500 and "characters left out" in message


def test_a_task_file_with_one_id_twice_is_named_and_a_model_named_twice_refused(capsys, tmp_path, policy_dir):
    path = tmp_path / "tasks.jsonl"
    path.write_text(task_line("t1") + "\n" + task_line("t2") + "\n" + task_line("t1") + "\n")
    assert error_line(capsys, "evaluate", "--model", "likelihood", "--tasks", path) == \
        f"rdrft evaluate: error: {path}:3: task id 't1' is also on line 1; every task needs its own id"
    path.write_text(task_line("t1") + "\n")
    assert error_line(capsys, "benchmark", "--models", "likelihood,phenomizer,likelihood", "--tasks", path) == \
        "rdrft benchmark: error: --models names one model twice; name each model once"
    other_path = f"{policy_dir}/../{policy_dir.name}"
    assert error_line(capsys, "benchmark", "--models", f"{policy_dir},{other_path}", "--tasks", path) == \
        f"rdrft benchmark: error: --models names one model as {policy_dir} and {other_path}; name each model once"


def test_an_uploaded_phenopacket_with_an_impossible_age_fills_in_no_age_and_says_why(open_app):
    packet = phenopacket(subject={"id": "p1", "sex": "female", "timeAtLastEncounter": {"age": {"iso8601duration": "P300Y"}}})
    at = open_app()
    at.file_uploader(key="phenopacket").set_value(("p.json", json.dumps(packet).encode(), "application/json")).run()
    assert (at.selectbox(key="sex").value, at.number_input(key="age").value) == ("FEMALE", None)
    assert "The age given is 300 years, outside 0-130: left out." in values(at.main.info)


def test_the_page_refuses_a_model_directory_that_asks_to_run_its_code(open_app, evil_model, fresh_model_cache):
    model = evil_model(asks_to_run_code=True)
    at = open_app(str(model), present=MARFAN)
    assert values(at.main.error)[0].endswith(f"{model}/config.json {REMOTE_CODE}")
    assert not evil_model.marker.exists() and not [d for d in at.main.dataframe if "gene" in d.value.columns]


def test_a_folder_of_arrays_is_read_only_once_its_index_is_written(tmp_path):
    """write_arrays' index (arrays.json) comes last: a folder a writer has not finished reads as
    None, a finished one as the arrays written, dtypes and NaNs kept; objects (pickles) are refused."""
    import numpy as np

    from rare_disease_rft.resources import ARRAYS_INDEX, read_arrays, write_arrays

    arrays = {"pairs.data": np.array([0.5, np.nan], np.float32), "flags": np.array([True, False])}
    write_arrays(tmp_path, arrays)
    read = read_arrays(tmp_path)
    assert list(read) == ["pairs.data", "flags"] and read["flags"].dtype == bool
    assert read["pairs.data"].dtype == np.float32 and np.array_equal(read["pairs.data"], arrays["pairs.data"],
                                                                      equal_nan=True)
    (tmp_path / ARRAYS_INDEX).unlink()
    assert read_arrays(tmp_path) is None
    with pytest.raises(ValueError):
        write_arrays(tmp_path / "objects", {"mixed": np.array([1, "a"], dtype=object)})
