"""Names shared across the package, each defined once here and imported (never restated) elsewhere.

Kept free of heavy imports: the CLI and the Snakefile read these before anything imports torch.
"""

from __future__ import annotations

from aea.data.families import SETTINGS

#: Display label of each evaluation setting, in the paper's table order (the registry's, aea.data.families);
#: ``DATASETS`` is its key order.
DATASET_LABELS = {name: setting.label for name, setting in SETTINGS.items()}
DATASETS = tuple(DATASET_LABELS)
#: ResNet-50 stages whose output activations can be tapped for erasing (Table 9; the paper erases at conv2).
LAYERS = ("conv1", "conv2", "conv3", "conv4", "conv5")
