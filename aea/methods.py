"""The seven methods and two controls as data: what is trained, what is erased, what is used at test.

Every method runs through the same loop (``aea.train``); a method only says
which networks exist, which erasing strategy feeds the complementary network,
where the triplet loss looks, and which feature is used at test time.

Loss of one step:  L = CE(basic, originals)
                     + alpha1 * CE(complementary, erased)      [two-network methods]
                     + alpha2 * L_T(features in ``triplet_on``)
where L_T follows the config's ``triplet_mode`` (the paper's text fits both):
  per_network  one batch-hard triplet per network over its own batch, summed
               (T_basic + T_complementary); the basic network then gets exactly
               Baseline 1's gradients, so a two-network run pairs with Baseline 1;
  joint        one batch-hard triplet over the basic network's features of the
               originals and the complementary network's features of the erased
               images together.
During the warm-up epochs only the basic network's terms are trained.

REDA and AOS ("with the same network structure") have two readings, the config's
``peer_form``: ``two_networks`` (their erasing feeds the complementary network,
test feature concatenated, as AEA) or ``one_network`` (one network trained with
that erasing as data augmentation, as their own papers use it).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from aea.errors import AEAError

PEERS = ("reda", "aos")  # the methods whose ``peer_form`` is a choice
# Config keys that only the complementary network or the test feature reads: a Baseline-1 run that differs from
# a two-network run in these alone trains that run's basic network (per_network triplet).
COMPLEMENTARY_KEYS = ("alpha1", "erase_ratio", "erase_layer", "erase_fill", "erase_backend", "warmup_epochs",
                      "triplet_mode", "peer_form", "test_feature_norm", "share_basic")
# What an erasing strategy needs besides the batch's images:
#   nothing          the images alone (its randomness comes from the step's generator)
#   basic_attention  the basic network's activations at ``erase_layer`` in the same step (dynamic erasing)
#   baseline1_masks  one mask per training image, computed once before training with a finished Baseline-1 run
NEEDS = ("nothing", "basic_attention", "baseline1_masks")


@dataclass(frozen=True)
class Strategy:
    """An erasing strategy as the training loop sees it: the class of ``aea.erasing`` that erases, what it needs,
    and the config keys its constructor reads. Torch-free, so the workflow can ask what a run needs."""

    name: str
    erasing_class: str  # a subclass of aea.erasing.Erasing
    needs: str = "nothing"
    reads: tuple[tuple[str, str], ...] = ()  # (constructor argument, RunConfig field)
    masks: str | None = None  # baseline1_masks: which Baseline-1 computation ("salient" top-R % or "occlusion")

    def __post_init__(self) -> None:
        if self.needs not in NEEDS:
            raise ValueError(f"strategy {self.name}: needs={self.needs!r} is not one of {NEEDS}")
        if (self.needs == "baseline1_masks") != (self.masks is not None):
            raise ValueError(f"strategy {self.name}: masks names the Baseline-1 computation of baseline1_masks only")

    def kwargs(self, cfg: Any) -> dict[str, Any]:
        """The constructor's arguments read from a run's config."""
        return {argument: getattr(cfg, key) for argument, key in self.reads}


_RATIO_FILL = (("ratio", "erase_ratio"), ("fill", "erase_fill"))
#: Every erasing strategy a method can name (aea.erasing's module docstring says what each does).
STRATEGIES: dict[str, Strategy] = {
    s.name: s
    for s in (
        Strategy("salient", "SalientErasing", "basic_attention",
                 (*_RATIO_FILL, ("backend", "erase_backend"), ("layer", "erase_layer"))),
        Strategy("gray", "GrayErasing", reads=_RATIO_FILL),
        # Baseline 4 and AOS: one class; what tells them apart is how their masks were computed
        Strategy("static-salient", "StaticMaskErasing", "baseline1_masks", (("fill", "erase_fill"),), "salient"),
        Strategy("occlusion", "StaticMaskErasing", "baseline1_masks", (("fill", "erase_fill"),), "occlusion"),
        Strategy("random", "RandomErasing"),
        Strategy("random-budget", "BudgetRectangleErasing", reads=_RATIO_FILL),
        Strategy("identity", "IdentityErasing"),
    )
}


@dataclass(frozen=True)
class Method:
    name: str
    title: str
    two_networks: bool
    # the strategy feeding the complementary network (or, with ``augments``, the one network's batch); None: none
    erasing: Strategy | None
    # features that enter the batch-hard triplet loss: "basic" (originals), "complementary" (erased) or "both"
    triplet_on: str
    # feature at test time: "basic" (2,560-d), "complementary" (2,560-d) or "concat" (5,120-d)
    test_feature: str
    # one network whose own batch is erased as data augmentation (peer_form=one_network)
    augments: bool = False

    @property
    def erasing_needs_basic_features(self) -> bool:
        """Dynamic salient erasing reads the basic network's activations of the same batch."""
        return self.erasing is not None and self.erasing.needs == "basic_attention"

    @property
    def needs_baseline1(self) -> bool:
        """A finished Baseline-1 run of the same dataset and seed is an input: its strategy's masks are computed
        with it."""
        return self.erasing is not None and self.erasing.needs == "baseline1_masks"

    def trains_baseline1(self, triplet_mode: str) -> bool:
        """Whether this method's basic network is trained exactly as Baseline 1's network (bit for bit on CPU
        at the same seed, tested): two networks that share no loss term and no random draw (per_network
        triplet, the complementary network's own dropout stream) and a basic network with Baseline 1's loss."""
        return self.two_networks and self.triplet_on == "both" and triplet_mode == "per_network"

    def basic_from_baseline1(self, triplet_mode: str, share_basic: bool) -> bool:
        """Whether a run takes its basic network from the Baseline-1 run of the same seed and trains only the
        complementary one (config ``share_basic``): Baselines 3/4, REDA, AOS and the no-erasing and
        random-budget controls, whose erasing never reads the basic network, so training it again would only
        repeat Baseline 1. AEA and Baseline 2 erase with the basic network's attention of the same step."""
        return share_basic and self.trains_baseline1(triplet_mode) and not self.erasing_needs_basic_features

    def uses_baseline1(self, triplet_mode: str, share_basic: bool) -> bool:
        """A finished Baseline-1 run is an input: for static masks, or as the basic network."""
        return self.needs_baseline1 or self.basic_from_baseline1(triplet_mode, share_basic)

    def read_off(self, triplet_mode: str, share_basic: bool) -> str | None:
        """The method whose run of the same seed already trains this run's network, so this run trains nothing
        (config ``share_basic``): Baseline 1 is AEA's basic network under the per_network triplet; else None."""
        if self.name == "baseline1" and share_basic and REGISTRY["aea"].trains_baseline1(triplet_mode):
            return "aea"
        return None


def _method(name: str, title: str, strategy: str | None, triplet_on: str = "both", test_feature: str = "concat",
            two_networks: bool = True) -> Method:
    return Method(name, title, two_networks, STRATEGIES[strategy] if strategy else None, triplet_on, test_feature)


#: Every method: the paper's seven, then the controls (docs/mechanism.md): AEA's structure and losses with the
#: complementary network fed the originals ("noerase", also a row of Tables 2 and 6), or AEA's pixel budget
#: erased at a random place.
REGISTRY: dict[str, Method] = {
    m.name: m
    for m in (
        _method("aea", "AEA", "salient"),
        _method("baseline1", "Baseline 1", None, "basic", "basic", two_networks=False),
        _method("baseline2", "Baseline 2", "salient", "complementary", "complementary"),
        _method("baseline3", "Baseline 3", "gray"),
        _method("baseline4", "Baseline 4", "static-salient"),
        _method("reda", "REDA", "random"),
        _method("aos", "AOS", "occlusion"),
        _method("noerase", "Two networks, no erasing", "identity"),
        _method("randbudget", "Two networks, random erasing of AEA's budget", "random-budget"),
    )
}
METHODS = tuple(REGISTRY)


def check_method(name: str) -> None:
    if name not in REGISTRY:
        raise AEAError(f"unknown method {name!r}; choose one of {', '.join(REGISTRY)}")


def get_method(name: str, peer_form: str = "two_networks") -> Method:
    """The registered method called ``name``, in ``peer_form`` for REDA and AOS (ignored by the others).

    Unknown names are refused with the list of valid ones.
    """
    check_method(name)
    method = REGISTRY[name]
    if peer_form == "one_network" and name in PEERS:
        return replace(method, two_networks=False, augments=True, triplet_on="basic", test_feature="basic")
    return method
