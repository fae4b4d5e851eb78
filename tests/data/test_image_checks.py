"""Images are checked to the last byte before any training (issue 13): a truncated JPEG passes a header check,
so `aea data check` and the first load decode every image, once per listing (the verdict is the split cache);
the advice for a broken image leads to a run that can still be evaluated."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from aea.cli import main
from aea.data import datasets as D
from aea.data.datasets import MARKET_DIR as MARKET


def one_line_error(capsys, argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("aea: error: ") and "Traceback" not in err[0], err
    return err[0]


def truncate(path: Path) -> None:
    """Cut a JPEG in half: its header still parses, its pixels do not decode."""
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with Image.open(path) as im:  # the fault a header-only check lets through
        assert im.size == (64, 128)


def first_query(root: Path) -> Path:
    return sorted((root / MARKET / "query").iterdir())[0]


def test_data_check_decodes_every_image_and_names_the_truncated_one(capsys, market_copy):
    broken = first_query(market_copy)
    truncate(broken)
    message = one_line_error(capsys, ["data", "check", "--dataset", "market1501", "--root", str(market_copy)])
    assert f"unreadable image {broken} (OSError: image file is truncated" in message
    assert "rerun `aea data make-synthetic`" in message and "check_counts=false" in message
    assert not (market_copy / MARKET / "aea_split.json").exists()  # no verdict cached for a broken listing


def test_verdict_is_cached_with_the_listing_and_paid_once(market_copy, monkeypatch):
    split = D.load_dataset("market1501", market_copy)
    cache = json.loads((market_copy / MARKET / "aea_split.json").read_text())
    assert cache["version"] == D.CACHE_VERSION == 2 and cache["signature"][:16] == split.signature

    def no_decoding(self):
        raise AssertionError("decoded again although the listing is unchanged")

    monkeypatch.setattr(Image.Image, "load", no_decoding)
    assert D.load_dataset("market1501", market_copy).query == split.query
    monkeypatch.undo()
    truncate(first_query(market_copy))  # another size and mtime: another listing, checked again
    with pytest.raises(D.AEAError, match="image file is truncated"):
        D.load_dataset("market1501", market_copy)


def test_cache_of_a_header_only_check_is_not_trusted(market_copy):
    D.load_dataset("market1501", market_copy)
    cache_path = market_copy / MARKET / "aea_split.json"
    broken = first_query(market_copy)
    truncate(broken)
    cache = json.loads(cache_path.read_text())
    cache.update(version=1, signature=D._signature(
        [market_copy / MARKET / f for f in D.SPLIT_FOLDERS.values()], []))  # as version 1 wrote it for this listing
    cache_path.write_text(json.dumps(cache))
    with pytest.raises(D.AEAError, match=f"unreadable image {broken}"):
        D.load_dataset("market1501", market_copy)


def test_training_checks_every_image_before_step_one(capsys, market_copy, tmp_path, monkeypatch):
    monkeypatch.setenv("AEA_DATA", str(market_copy))
    broken = first_query(market_copy)
    truncate(broken)
    out = tmp_path / "run"
    message = one_line_error(capsys, ["train", "--dataset", "market1501", "--method", "baseline1", "--profile", "tiny",
                                      "--out", str(out)])
    assert f"unreadable image {broken}" in message
    assert not (out / "config.yaml").exists() and not (out / "train_log.csv").exists()


def test_advice_for_a_broken_image_leads_to_an_evaluated_run(capsys, market_copy, tmp_path, monkeypatch):
    """Trained, then a query image breaks: the message's way out (delete it, check_counts=false) evaluates."""
    monkeypatch.setenv("AEA_DATA", str(market_copy))
    run = tmp_path / "run"
    assert main(["train", "--dataset", "market1501", "--method", "baseline1", "--profile", "tiny", "--out",
                 str(run)]) == 0
    broken = first_query(market_copy)
    num_query = len(D.load_dataset("market1501", market_copy).query)
    truncate(broken)
    assert "delete the file and pass check_counts=false" in one_line_error(capsys, ["evaluate", "--run", str(run)])
    broken.unlink()
    message = one_line_error(capsys, ["evaluate", "--run", str(run)])
    assert "query_images" in message and "`aea evaluate --run DIR check_counts=false`" in message
    message = one_line_error(capsys, ["evaluate", "--run", str(run), "lr=0.1"])
    assert "aea evaluate takes only check_counts=..." in message and "not lr" in message
    assert main(["evaluate", "--run", str(run), "check_counts=false"]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert 0 < len(metrics["per_query"]["query"]) <= num_query - 1 and metrics["data_signature"] == D.data_signature(
        "market1501", market_copy)
    assert main(["data", "check", "--dataset", "market1501", "--root", str(market_copy), "--no-check-counts"]) == 0
