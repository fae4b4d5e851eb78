"""Profiles inherit: each lists only what differs from its base, and resolves to the values spelled out here."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from aea.config import PROFILE_DIR, RunConfig, load_profile, resolve
from aea.errors import AEAError
from aea.io import read_yaml

# What each shipped profile changes from its base, written out by hand (the values before profiles inherited).
PAPER_CHANGES = {"num_workers": 4, "eval_batch_size": 256}
SMOKE_CHANGES = {"data_root": "data/smoke", "arch": "resnet10", "pretrained": None, "height": 64, "width": 32,
                 "epochs": 6, "warmup_epochs": 1, "lr": 0.001, "lr_decay_epoch": 5, "optimizer": "adam",
                 "num_workers": 0, "eval_batch_size": 128}
TINY_CHANGES = {"data_root": "data/tiny", "epochs": 2, "lr_decay_epoch": 1, "batch_p": 4, "batch_k": 2,
                "max_iters_per_epoch": 2}
RUN_FIELDS = ("profile", "dataset", "method", "seed")


def changed(cfg: RunConfig, base: RunConfig) -> dict:
    return {k: v for k, v in cfg.to_dict().items() if k not in RUN_FIELDS and base.to_dict()[k] != v}


def recipe(dataset: str) -> RunConfig:
    return RunConfig(profile="x", dataset=dataset, method="aea")


@pytest.mark.parametrize("dataset", ["market1501", "cuhk03-detected"])
def test_each_profile_resolves_to_its_base_plus_its_changes(dataset):
    paper, smoke, tiny = (resolve(load_profile(n), dataset, "aea", {}, 0) for n in ("paper", "smoke", "tiny"))
    cuhk = {"margin": 0.35, "erase_ratio": 20.0} if dataset.startswith("cuhk03") else {}
    assert changed(paper, recipe(dataset)) == {**PAPER_CHANGES, **cuhk}  # the field defaults are the recipe
    assert changed(smoke, paper) == SMOKE_CHANGES
    assert changed(tiny, smoke) == TINY_CHANGES


def test_lists_and_sweeps_are_inherited_or_replaced_whole():
    paper, smoke, tiny = (load_profile(n) for n in ("paper", "smoke", "tiny"))
    assert smoke.datasets == paper.datasets == ("market1501", "cuhk03-labeled", "cuhk03-detected", "dukemtmcreid")
    assert tiny.datasets == ("market1501", "cuhk03-detected") and tiny.seeds == smoke.seeds == (0,)
    assert (paper.synthetic, smoke.synthetic, tiny.synthetic) == (None, "smoke", "tiny")
    assert smoke.sweeps == {**paper.sweeps, "erase_ratio": [5, 10, 20, 30]}
    assert tiny.sweeps == {"alpha1": [1], "alpha2": [0.5, 1], "erase_layer": ["conv2", "conv3"],
                           "erase_ratio": [10, 20], "margin": [0.3]}
    assert [p.name for p in (paper, smoke, tiny)] == ["paper", "smoke", "tiny"]


def test_shipped_profiles_list_no_value_their_base_already_has():
    for path in sorted(PROFILE_DIR.glob("*.yaml")):
        raw = read_yaml(path)
        if "base" not in raw:
            fields = {f.name: f.default for f in dataclasses.fields(RunConfig)}
            assert all(fields[k] != v for k, v in raw.get("defaults", {}).items()), path
            continue
        base = load_profile(raw["base"])
        assert all(base.defaults.get(k, "unset") != v for k, v in raw.get("defaults", {}).items()), path
        assert all(base.sweeps.get(k) != v for k, v in raw.get("sweeps", {}).items()), path


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_a_users_profile_merges_per_dataset_and_per_key(tmp_path):
    mine = write(tmp_path / "mine.yaml", "base: tiny\ndataset_defaults:\n  cuhk03-detected: {lr: 0.002}\n"
                                         "sweeps:\n  margin: [0.2]\n")
    profile = load_profile(str(mine))
    cuhk = resolve(profile, "cuhk03-detected", "aea", {}, 0)
    assert (cuhk.lr, cuhk.margin, cuhk.erase_ratio, cuhk.epochs) == (0.002, 0.35, 20.0, 2)
    assert resolve(profile, "market1501", "aea", {}, 0).lr == 0.001
    assert profile.sweeps["margin"] == [0.2] and profile.sweeps["alpha2"] == [0.5, 1]
    assert profile.name == "mine"  # never inherited: the tiny runs and tables stay tiny's


def test_base_may_be_a_path_relative_to_the_profile_file(tmp_path):
    write(tmp_path / "shared/slow.yaml", "base: smoke\nprofile: slow\ndefaults: {epochs: 12}\n")
    mine = write(tmp_path / "mine/fast.yaml", "base: ../shared/slow.yaml\ndefaults: {lr: 0.01}\n")
    cfg = resolve(load_profile(str(mine)), "market1501", "aea", {}, 0)
    assert (cfg.profile, cfg.epochs, cfg.lr, cfg.arch) == ("fast", 12, 0.01, "resnet10")


@pytest.mark.parametrize("text, message", [
    ("base: tiny\ndefault: {lr: 0.1}\n", r"unknown top-level keys \['default'\]; valid: profile, base, defaults"),
    ("base: tiny\ndefaults: 3\n", "`defaults` must be a mapping"),
    ("base: nosuch\n", "profile 'nosuch' not found .* use one of: .*smoke.*tiny"),
    ("base: loop.yaml\n", "profile bases form a loop"),
    ("- a list\n", "a profile is a mapping"),
])
def test_bad_profiles_are_one_clear_error(tmp_path, text, message):
    path = write(tmp_path / "loop.yaml", text)
    with pytest.raises(AEAError, match=message):
        load_profile(str(path))
