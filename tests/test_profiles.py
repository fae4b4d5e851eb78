"""Profiles inherit: each lists only what differs from its base, and resolves to the values spelled out here."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

import aea
from aea.config import PROFILE_DIR, RunConfig, coerce, load_profile, resolve
from aea.errors import AEAError
from aea.io import read_yaml

SHIPPED = sorted(p.stem for p in PROFILE_DIR.glob("*.yaml"))
RUN_FIELDS = ("profile", "dataset", "method", "seed")


def own(name: str) -> dict:
    """A shipped profile file's own values, typed."""
    raw = read_yaml(PROFILE_DIR / f"{name}.yaml")
    return {**raw, "defaults": {k: coerce(k, v) for k, v in (raw.get("defaults") or {}).items()}}


def test_profiles_are_found_in_the_package_and_form_one_chain():
    assert PROFILE_DIR == Path(aea.__file__).parent / "profiles"
    assert {"paper", "smoke", "tiny"} <= set(SHIPPED)
    assert (own("smoke")["base"], own("tiny")["base"]) == ("paper", "smoke") and "base" not in own("paper")


@pytest.mark.parametrize("name", ["smoke", "tiny"])
def test_a_profile_resolves_to_its_base_with_its_own_values_on_top(name):
    raw, profile = own(name), load_profile(name)
    base = load_profile(raw["base"])
    for key in ("datasets", "seeds", "synthetic"):
        assert getattr(profile, key) == (tuple(raw[key]) if key != "synthetic" and key in raw else
                                         raw.get(key, getattr(base, key)))
    assert profile.sweeps == {**base.sweeps, **raw.get("sweeps", {})}
    for dataset in profile.datasets:
        cfg, before = (resolve(p, dataset, "aea", {}, 0).to_dict() for p in (profile, base))
        # dataset defaults (the base's, then the file's) still win over the file's defaults
        listed = {k: coerce(k, v) for k, v in (raw.get("dataset_defaults") or {}).get(dataset, {}).items()}
        expected = {**before, **raw["defaults"], **base.dataset_defaults.get(dataset, {}), **listed, "profile": name}
        assert cfg == expected


def test_paper_lists_only_what_differs_from_the_recipe_and_others_only_what_differs_from_their_base():
    fields = {f.name: f.default for f in dataclasses.fields(RunConfig)}
    assert own("paper")["defaults"] and all(fields[k] != v for k, v in own("paper")["defaults"].items())
    for name in ("smoke", "tiny"):
        raw = own(name)
        base = load_profile(raw["base"])
        assert all(base.defaults.get(k, fields[k]) != v for k, v in raw["defaults"].items()), name
        assert all(base.sweeps.get(k) != v for k, v in raw.get("sweeps", {}).items()), name


def test_the_cuhk03_defaults_live_once_and_reach_every_profile():
    assert [n for n in SHIPPED if "dataset_defaults" in own(n)] == ["paper"]
    for name in ("paper", "smoke", "tiny"):
        cuhk = resolve(load_profile(name), "cuhk03-detected", "aea", {}, 0)
        assert (cuhk.margin, cuhk.erase_ratio) == (0.35, 20.0)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_a_users_profile_merges_per_dataset_and_per_key(tmp_path):
    mine = write(tmp_path / "mine.yaml", "base: tiny\ndataset_defaults:\n  cuhk03-detected: {lr: 0.125}\n"
                                         "sweeps:\n  margin: [0.2]\n")
    profile, tiny = load_profile(str(mine)), load_profile("tiny")
    cuhk, tiny_cuhk = (resolve(p, "cuhk03-detected", "aea", {}, 0) for p in (profile, tiny))
    assert (cuhk.lr, cuhk.margin, cuhk.erase_ratio, cuhk.epochs) == (0.125, 0.35, 20.0, tiny_cuhk.epochs)
    assert resolve(profile, "market1501", "aea", {}, 0).lr == resolve(tiny, "market1501", "aea", {}, 0).lr != 0.125
    assert profile.sweeps == {**tiny.sweeps, "margin": [0.2]}
    assert profile.name == "mine"  # never inherited: the tiny runs and tables stay tiny's


def test_base_may_be_a_path_relative_to_the_profile_file(tmp_path):
    write(tmp_path / "shared/slow.yaml", "base: smoke\nprofile: slow\ndefaults: {epochs: 12}\n")
    mine = write(tmp_path / "mine/fast.yaml", "base: ../shared/slow.yaml\ndefaults: {lr: 0.01}\n")
    cfg = resolve(load_profile(str(mine)), "market1501", "aea", {}, 0)
    assert (cfg.profile, cfg.epochs, cfg.lr, cfg.arch) == ("fast", 12, 0.01, load_profile("smoke").defaults["arch"])


@pytest.mark.parametrize("text, message", [
    ("base: tiny\ndefault: {lr: 0.1}\n", r"unknown top-level keys \['default'\]; valid: profile, base, defaults"),
    ("base: tiny\ndefaults: 3\n", "`defaults` must be a mapping"),
    ("base: nosuch\n", "profile 'nosuch' not found .* use one of: .*smoke.*tiny"),
    ("base: loop.yaml\n", "profile bases form a loop"),
    ("- a list\n", "a profile is a mapping"),
    ("base: tiny\ngroup_seeds: 3\n", "group_seeds: 3 is not true or false"),
    ("base: tiny\nsweep_seeds: [0]\n", r"sweep_seeds: \[0\] is not a number of seeds >= 1"),
    ("base: tiny\nsweep_seeds: 0\n", "sweep_seeds: 0 is not a number of seeds"),
])
def test_bad_profiles_are_one_clear_error(tmp_path, text, message):
    path = write(tmp_path / "loop.yaml", text)
    with pytest.raises(AEAError, match=message):
        load_profile(str(path))


def test_smoke_groups_its_seeds_into_one_job_per_run_and_paper_does_not():
    """smoke's runs take seconds (a process start ~4 s): one job trains all 7 seeds; paper's take hours."""
    smoke, tiny, paper = (load_profile(n) for n in ("smoke", "tiny", "paper"))
    assert smoke.group_seeds and tiny.group_seeds and not paper.group_seeds
    assert smoke.seeds == tuple(range(7)) and paper.seeds == (0, 1, 2) and tiny.seeds == (0,)
    # the sweeps and interpretations: smoke's first 3 seeds; tiny inherits the number, capped by its one seed
    assert (smoke.sweep_seeds, tiny.sweep_seeds, paper.sweep_seeds) == ((0, 1, 2), (0,), (0, 1, 2))
