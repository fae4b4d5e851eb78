"""Config resolution, overrides and run naming."""

import pytest

from aea.config import (
    RunConfig,
    coerce,
    config_from_dict,
    format_value,
    load_profile,
    parse_overrides,
    parse_run_name,
    resolve,
    run_name,
)
from aea.errors import AEAError


def test_run_name_round_trips_through_parse():
    overrides = {"erase_ratio": 20.0, "alpha1": 0.5, "erase_layer": "conv3", "margin": 0.35}
    name = run_name("aea", overrides)
    assert name == "aea-alpha1_0.5-erase_layer_conv3-erase_ratio_20-margin_0.35"
    assert parse_run_name(name) == ("aea", overrides)
    assert parse_run_name("baseline1") == ("baseline1", {})


def test_format_value_drops_integral_decimals():
    assert [format_value(v) for v in (20.0, 0.5, 3, "conv2")] == ["20", "0.5", "3", "conv2"]


def test_parse_overrides_types_values():
    assert parse_overrides(["erase_ratio=20", "flip=false", "pretrained=none", "epochs=3"]) == {
        "erase_ratio": 20.0, "flip": False, "pretrained": None, "epochs": 3}


@pytest.mark.parametrize("item, fragment", [
    ("erase_ratio", "not key=value"),
    ("learning_rate=0.1", "unknown config key 'learning_rate'"),
    ("epochs=2.5", "needs a int"),
    ("flip=maybe", "needs a bool"),
])
def test_bad_overrides_are_one_line_errors(item, fragment):
    with pytest.raises(AEAError, match=fragment) as info:
        parse_overrides([item])
    assert "\n" not in str(info.value)


def test_bad_run_names_are_refused():
    with pytest.raises(AEAError, match="unknown method"):
        parse_run_name("foo-erase_ratio_10")
    with pytest.raises(AEAError, match="known config key"):
        parse_run_name("aea-colour_red")


def test_paper_profile_is_the_paper_recipe():
    profile = load_profile("paper")
    market = resolve(profile, "market1501", "aea", {}, 0)
    assert (market.arch, market.height, market.width, market.epochs, market.warmup_epochs) == (
        "resnet50", 256, 128, 100, 10)
    assert (market.lr, market.lr_decay_epoch, market.lr_gamma, market.batch_p, market.batch_k) == (0.01, 75, 0.1, 8, 4)
    assert (market.erase_ratio, market.margin, market.erase_layer, market.alpha1, market.alpha2) == (
        10.0, 0.3, "conv2", 1.0, 1.0)
    cuhk = resolve(profile, "cuhk03-detected", "aea", {}, 0)
    assert (cuhk.erase_ratio, cuhk.margin) == (20.0, 0.35)


def test_canonical_overrides_drop_dataset_defaults():
    profile = load_profile("paper")
    assert profile.canonical("market1501", {"erase_ratio": 10}) == {}
    assert profile.canonical("cuhk03-labeled", {"erase_ratio": 10}) == {"erase_ratio": 10.0}
    assert profile.canonical("cuhk03-labeled", {"erase_ratio": "20", "margin": 0.3}) == {"margin": 0.3}


@pytest.mark.parametrize("overrides, fragment", [
    ({"erase_ratio": 0}, "outside \\(0, 100\\)"),
    ({"erase_ratio": 100}, "outside \\(0, 100\\)"),
    ({"erase_layer": "conv6"}, "erase_layer"),
    ({"batch_k": 1}, ">= 2"),
    ({"warmup_epochs": 200}, "warmup_epochs"),
])
def test_resolve_refuses_meaningless_values(overrides, fragment):
    with pytest.raises(AEAError, match=fragment):
        resolve(load_profile("paper"), "market1501", "aea", overrides, 0)


def test_unknown_profile_names_the_known_ones():
    with pytest.raises(AEAError, match="smoke"):
        load_profile("nonexistent")


def test_config_round_trips_through_dict_and_hash_is_stable():
    cfg = resolve(load_profile("smoke"), "market1501", "aea", {"erase_ratio": 15}, 3)
    again = config_from_dict(cfg.to_dict())
    assert again == cfg and again.hash() == cfg.hash()
    assert resolve(load_profile("smoke"), "market1501", "aea", {}, 3).hash() != cfg.hash()
    assert isinstance(cfg, RunConfig) and coerce("seed", "4") == 4
