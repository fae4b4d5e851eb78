"""Names shared across the package, each defined once here and imported (never restated) elsewhere.

Kept free of heavy imports: the CLI and the Snakefile read these before anything imports torch.
"""

from __future__ import annotations

#: Display label of each evaluation setting, in the paper's table order; ``DATASETS`` is its key order.
DATASET_LABELS = {
    "market1501": "Market-1501",
    "cuhk03-labeled": "CUHK03 labeled",
    "cuhk03-detected": "CUHK03 detected",
    "dukemtmcreid": "DukeMTMC-reID",
}
DATASETS = tuple(DATASET_LABELS)
#: ResNet-50 stages whose output activations can be tapped for erasing (Table 9; the paper erases at conv2).
LAYERS = ("conv1", "conv2", "conv3", "conv4", "conv5")
