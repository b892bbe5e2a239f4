"""Bad input, as a new user gives it, thrown at the command line and at the app (issue 18).

Every case asserts the exit code, the one line the user reads, and that nothing the user gave (an
input, an earlier output) was changed. Built-in rankers and a small untrained policy directory keep
each case to a second or two.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

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
    from rare_disease_rft.rankers.policy import PolicyNet, save_policy
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
    from rare_disease_rft.rankers.policy import PolicyNet, save_policy

    save_policy(folder, PolicyNet(hidden=4, layers=1))


@pytest.mark.parametrize("damage, message", [
    (_truncate, "cannot be loaded as a policy model: Error while deserializing header: incomplete metadata, "
                "file not fully covered"),
    (lambda d: (d / "model.safetensors").write_bytes(b""), "cannot be loaded as a policy model: Error while "
                                                           "deserializing header: header too small"),
    (_wrong_shapes, "cannot be loaded as a policy model: Error(s) in loading state_dict for PolicyNet: size "
                    "mismatch for knowledge.0.weight"),
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

    def write(trust_remote_code: bool) -> Path:
        (model / "config.json").write_text(json.dumps({
            "kind": "llm", "name": "evil", "shortlist": {"ranker": "likelihood", "size": 4},
            "model": {"id": str(base), "dtype": "float32", "trust_remote_code": trust_remote_code}}))
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
    monkeypatch.setattr(os, "execve", lambda *args: pytest.fail("rdrft app started a server"))
    model = evil_model(trust_remote_code=True)
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
        model = evil_model(trust_remote_code=False)
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
    model = evil_model(trust_remote_code=True)
    assert "stopped here" in error_line(capsys, "rank", "--model", model, "--present", MARFAN, "--trust-remote-code")
    evil_model(trust_remote_code=False)
    assert "stopped here" in error_line(capsys, "rank", "--model", model, "--present", MARFAN)
    assert asked == [True, False]  # the flag decides, never the directory
