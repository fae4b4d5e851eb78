"""Networks of the harness: ResNet trunk with stage taps, one re-id network, the AEA pair."""

from aea.models.aea import FEATURES, TwoNetworks
from aea.models.backbone import Backbone
from aea.models.branch import NetOutput, ReIDNetwork

__all__ = ["FEATURES", "Backbone", "NetOutput", "ReIDNetwork", "TwoNetworks"]
