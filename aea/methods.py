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

from aea.config import METHODS, check_method

PEERS = ("reda", "aos")  # the methods whose ``peer_form`` is a choice
# Config keys that only the complementary network or the test feature reads: a Baseline-1 run that differs from
# a two-network run in these alone trains that run's basic network (per_network triplet).
COMPLEMENTARY_KEYS = ("alpha1", "erase_ratio", "erase_layer", "erase_fill", "erase_backend", "warmup_epochs",
                      "triplet_mode", "peer_form", "test_feature_norm", "share_basic")


@dataclass(frozen=True)
class Method:
    name: str
    title: str
    two_networks: bool
    # erasing strategy feeding the complementary network: "salient" (dynamic, every iteration),
    # "gray" (Baseline 3), "static-salient" (Baseline 4), "random" (REDA), "occlusion" (AOS),
    # "random-budget" / "identity" (controls) or None
    erasing: str | None
    # features that enter the batch-hard triplet loss: "basic" (originals), "complementary" (erased) or "both"
    triplet_on: str
    # feature at test time: "basic" (2,560-d), "complementary" (2,560-d) or "concat" (5,120-d)
    test_feature: str
    # a finished Baseline-1 run of the same dataset and seed is an input (static masks are computed with it)
    needs_baseline1: bool = False
    # one network whose own batch is erased as data augmentation (peer_form=one_network)
    augments: bool = False

    @property
    def erasing_needs_basic_features(self) -> bool:
        """Dynamic salient erasing reads the basic network's activations of the same batch."""
        return self.erasing == "salient"

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


REGISTRY: dict[str, Method] = {
    m.name: m
    for m in (
        Method("aea", "AEA", True, "salient", "both", "concat"),
        Method("baseline1", "Baseline 1", False, None, "basic", "basic"),
        Method("baseline2", "Baseline 2", True, "salient", "complementary", "complementary"),
        Method("baseline3", "Baseline 3", True, "gray", "both", "concat"),
        Method("baseline4", "Baseline 4", True, "static-salient", "both", "concat", needs_baseline1=True),
        Method("reda", "REDA", True, "random", "both", "concat"),
        Method("aos", "AOS", True, "occlusion", "both", "concat", needs_baseline1=True),
        # controls of the mechanism experiment (docs/mechanism.md): AEA's structure and losses, the
        # complementary network fed the originals, or AEA's pixel budget erased at a random place
        Method("noerase", "Two networks, no erasing", True, "identity", "both", "concat"),
        Method("randbudget", "Two networks, random erasing of AEA's budget", True, "random-budget", "both",
               "concat"),
    )
}
assert tuple(REGISTRY) == METHODS


def get_method(name: str, peer_form: str = "two_networks") -> Method:
    """The registered method called ``name``, in ``peer_form`` for REDA and AOS (ignored by the others).

    Unknown names are refused with the list of valid ones.
    """
    check_method(name)
    method = REGISTRY[name]
    if peer_form == "one_network" and name in PEERS:
        return replace(method, two_networks=False, augments=True, triplet_on="basic", test_feature="basic")
    return method
