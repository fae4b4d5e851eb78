"""The method and strategy registries (aea.methods) agree with the code that runs them: every registered method's
erasing strategy builds from a run's config and erases a batch with exactly the inputs it declares it needs."""

from __future__ import annotations

import pytest
import torch

from aea.config import load_profile, resolve
from aea.device import place
from aea.erasing import EraseInput, Erasing, MaskBank, build_erasing
from aea.errors import AEAError
from aea.methods import NEEDS, REGISTRY, STRATEGIES, Strategy, check_method, get_method
from aea.models.aea import basic_network, build_networks
from aea.train import run_erasing

TINY = load_profile("tiny")


def tiny_batch(cfg, size: int = 4) -> dict:
    generator = torch.Generator().manual_seed(0)
    return {"images": torch.randn(size, 3, cfg.height, cfg.width, generator=generator),
            "pids": torch.arange(size) // 2, "indices": torch.arange(size),
            "flipped": torch.tensor([False, True] * (size // 2))}


@pytest.mark.parametrize("name", [m for m in REGISTRY if REGISTRY[m].erasing is not None])
def test_every_methods_strategy_builds_from_its_config_and_erases_with_what_it_declares(name):
    """What a run of ``name`` builds (``aea.train.run_erasing``, precomputed masks handed in as Baseline 4 / AOS
    get them), fed only the inputs its ``needs`` names: a strategy that reads more fails here."""
    method = get_method(name)
    cfg = resolve(TINY, "market1501", name, {"pretrained": None}, 0)
    batch = tiny_batch(cfg)
    needs = method.erasing.needs
    kwargs = method.erasing.kwargs(cfg)
    if needs == "baseline1_masks":
        masks = torch.zeros(len(batch["images"]), cfg.height, cfg.width, dtype=torch.bool)
        masks[:, : cfg.height // 4] = True
        strategy = build_erasing(method.erasing, **kwargs, masks=MaskBank.from_masks(masks))
    else:
        strategy = run_erasing(cfg, method, None, None, None, torch.device("cpu"))
    assert isinstance(strategy, Erasing)
    features = None
    if needs == "basic_attention":
        model = place(build_networks(cfg, 8, pretrained=None), torch.device("cpu")).eval()
        with torch.no_grad():
            features = basic_network(model).tap(batch["images"], cfg.erase_layer)
    erased, mask = strategy.erase(EraseInput(
        batch["images"], features=features,
        indices=batch["indices"] if needs == "baseline1_masks" else None,
        flipped=batch["flipped"] if needs == "baseline1_masks" else None,
        generator=torch.Generator().manual_seed(1)))
    assert erased.shape == batch["images"].shape and mask.shape == (4, cfg.height, cfg.width)
    assert mask.dtype == torch.bool
    assert torch.equal(erased[~mask[:, None].expand_as(erased)], batch["images"][~mask[:, None].expand_as(erased)])
    if name == "noerase":
        assert not mask.any()
    elif name in ("aea", "baseline2", "baseline3", "randbudget"):  # top-R % budgets: R % of each image's pixels
        share = mask.flatten(1).float().mean(1)
        assert torch.allclose(share, torch.full_like(share, cfg.erase_ratio / 100), atol=1 / (cfg.height * cfg.width))


def test_a_strategy_reading_a_config_key_that_does_not_exist_fails_at_build():
    broken = Strategy("gray", "GrayErasing", reads=(("ratio", "erase_ratio_typo"),))
    cfg = resolve(TINY, "market1501", "baseline3", {}, 0)
    with pytest.raises(AttributeError):
        broken.kwargs(cfg)


def test_strategy_declarations_are_checked():
    with pytest.raises(ValueError, match="needs="):
        Strategy("x", "GrayErasing", needs="the moon")
    with pytest.raises(ValueError, match="masks"):
        Strategy("x", "StaticMaskErasing", needs="baseline1_masks")
    assert {s.needs for s in STRATEGIES.values()} == set(NEEDS)


def test_the_registry_says_which_runs_need_baseline1_and_which_erase_with_the_basic_network():
    assert [m for m in REGISTRY if REGISTRY[m].needs_baseline1] == ["baseline4", "aos"]
    assert [m for m in REGISTRY if REGISTRY[m].erasing_needs_basic_features] == ["aea", "baseline2"]
    assert get_method("aos", "one_network").needs_baseline1 and get_method("aos", "one_network").augments


def test_unknown_method_and_strategy_are_one_line_refusals_listing_the_valid_ones():
    with pytest.raises(AEAError, match="unknown method 'cutout'; choose one of aea, baseline1"):
        check_method("cutout")
    with pytest.raises(AEAError, match="unknown erasing strategy 'cutout'; choose one of salient"):
        build_erasing("cutout")
