"""The seven methods as data: what is trained, what is erased, what is used at test.

Every method runs through the same loop (``aea.train``); a method only says
which networks exist, which erasing strategy feeds the complementary network,
where the triplet loss looks, and which feature is used at test time.

Loss of one step:  L = CE(basic, originals)
                     + alpha1 * CE(complementary, erased)      [two-network methods]
                     + alpha2 * triplet(features in ``triplet_on``)
During the warm-up epochs only the basic network's terms are trained.
"""

from __future__ import annotations

from dataclasses import dataclass

from aea.config import METHODS, check_method


@dataclass(frozen=True)
class Method:
    name: str
    title: str
    two_networks: bool
    # erasing strategy feeding the complementary network: "salient" (dynamic, every iteration),
    # "gray" (Baseline 3), "static-salient" (Baseline 4), "random" (REDA), "occlusion" (AOS) or None
    erasing: str | None
    # features that enter the batch-hard triplet loss: "basic" (originals), "complementary" (erased) or "both"
    triplet_on: str
    # feature at test time: "basic" (2,560-d), "complementary" (2,560-d) or "concat" (5,120-d)
    test_feature: str
    # a finished Baseline-1 run of the same dataset and seed is an input (static masks are computed with it)
    needs_baseline1: bool = False

    @property
    def erasing_needs_basic_features(self) -> bool:
        """Dynamic salient erasing reads the basic network's activations of the same batch."""
        return self.erasing == "salient"


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
    )
}
assert tuple(REGISTRY) == METHODS


def get_method(name: str) -> Method:
    """The registered method called ``name``; unknown names are refused with the list of valid ones."""
    check_method(name)
    return REGISTRY[name]
