"""workflow/scripts/evaluate_many.py: one process evaluating a run on several test sets writes what `aea evaluate`
writes for each, and stops at the first error with the CLI's one-line message in the log."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from aea import train as T
from aea.cli import main
from aea.config import load_profile, resolve
from aea.io import read_json

SCRIPT = Path(__file__).resolve().parent.parent / "workflow/scripts/evaluate_many.py"


@pytest.fixture(scope="module")
def evaluate_many():
    spec = importlib.util.spec_from_file_location("evaluate_many", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.evaluate_many


@pytest.fixture(scope="module")
def tiny_run(tiny_market, tmp_path_factory):
    cfg = resolve(load_profile("tiny"), "market1501", "baseline1", {"epochs": 1, "warmup_epochs": 0,
                                                                  "lr_decay_epoch": 1}, 0)
    run = tmp_path_factory.mktemp("run") / "b1"
    T.train(cfg, tiny_market, run)
    return run


def test_writes_what_aea_evaluate_writes_for_each_root(evaluate_many, tiny_run, tiny_root, tmp_path, monkeypatch):
    monkeypatch.delenv("AEA_DATA", raising=False)
    single = tmp_path / "single.json"
    assert main(["evaluate", "--run", str(tiny_run), "--data-root", str(tiny_root), "--out", str(single),
                 "--threads", "1"]) == 0
    outs = [tmp_path / "a.json", tmp_path / "b.json"]
    log = tmp_path / "evaluate.log"
    assert evaluate_many(str(tiny_run), [str(tiny_root)] * 2, [str(o) for o in outs], 1, str(log)) == 0
    def measured(path):  # everything but the evaluation's own duration
        return {k: v for k, v in read_json(path).items() if k != "eval_seconds"}

    assert all(measured(o) == measured(single) for o in outs)
    assert log.read_text().count("rank-1") == 2  # both evaluations logged to the job's log


def test_stops_at_the_first_error_with_the_cli_line(evaluate_many, tiny_run, tiny_root, tmp_path, monkeypatch):
    monkeypatch.delenv("AEA_DATA", raising=False)
    outs = [tmp_path / "a.json", tmp_path / "b.json"]
    log = tmp_path / "evaluate.log"
    assert evaluate_many(str(tiny_run), [str(tmp_path / "missing"), str(tiny_root)], [str(o) for o in outs], 1,
                         str(log)) == 2
    assert log.read_text().splitlines()[-1].startswith("aea: error: ")
    assert not any(o.exists() for o in outs)


def test_refuses_unpaired_roots(evaluate_many, tiny_run, tmp_path):
    with pytest.raises(ValueError, match="2 data roots for 1 metrics files"):
        evaluate_many(str(tiny_run), ["a", "b"], [str(tmp_path / "a.json")], 1, str(tmp_path / "log"))
