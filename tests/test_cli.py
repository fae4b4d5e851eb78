"""The `aea` command: user errors are one line naming the fix, with exit status 2 and no traceback."""

from __future__ import annotations

import json

import pytest

from aea.cli import main


def one_line_error(capsys, argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("aea: error: ") and "Traceback" not in err[0]
    return err[0]


def test_missing_dataset_names_the_command_that_makes_it(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("AEA_DATA", str(tmp_path / "nowhere"))
    message = one_line_error(capsys, ["train", "--dataset", "market1501", "--method", "aea", "--profile", "tiny",
                                      "--out", str(tmp_path / "run")])
    assert "make-synthetic" in message
    assert not (tmp_path / "run" / "model.pt").exists()


@pytest.mark.parametrize("override, fragment", [
    ("erase_ratio=120", "outside (0, 100)"),
    ("colour=red", "unknown config key 'colour'"),
    ("erase_layer=conv9", "erase_layer"),
])
def test_bad_overrides_are_refused_before_any_work(capsys, tmp_path, override, fragment):
    message = one_line_error(capsys, ["train", "--dataset", "market1501", "--method", "aea", "--profile", "tiny",
                                      "--out", str(tmp_path / "run"), override])
    assert fragment in message and not (tmp_path / "run").exists()


def test_unknown_profile_and_non_run_directory(capsys, tmp_path):
    assert "use one of" in one_line_error(capsys, ["train", "--dataset", "market1501", "--method", "aea",
                                                   "--profile", "laptop", "--out", str(tmp_path)])
    assert "not a run directory" in one_line_error(capsys, ["evaluate", "--run", str(tmp_path)])


def test_data_check_writes_counts(capsys, tiny_root, tmp_path):
    assert main(["data", "check", "--dataset", "market1501", "--root", str(tiny_root),
                 "--json", str(tmp_path / "counts.json")]) == 0
    counts = json.loads((tmp_path / "counts.json").read_text())["market1501"]
    assert counts["train_ids"] == 16 and counts["query"] > 0 and counts["gallery"] > 0


def test_compare_before_the_table_exists_says_how_to_build_it(capsys, tmp_path):
    assert "snakemake --cores all" in one_line_error(capsys, ["compare", "table2", "--out-dir", str(tmp_path)])
