"""Generator version 3's calibration rule (docs/mechanism.md, "Generator version 3"): the share of the upper body
that a trained run's top-R% erasing mask covers, for several R, on the un-flipped training images of a
version-2/3 data set (part labels resized to the network input by nearest neighbour, as C3 reads them).

    python workflow/scripts/mechanism_coverage.py --run RUN_DIR --data-root ROOT [--ratios 15 20 ...] [--json OUT]

Prints one line per R: R, the upper body's coverage, and the mask's share on each label. Compares no methods: it
reads one run (Baseline 1 in the calibration)."""

import argparse
import json

import numpy as np
import torch

from aea.data.datasets import load_dataset
from aea.data.loaders import build_test_loader
from aea.evaluate import attention_masks, part_labels
from aea.mechanism import LABELS, SALIENT_REGION, attention_share_per_part, region_coverage
from aea.models.aea import basic_network
from aea.runs import load_run


def coverage(run: str, root: str, ratios: list[float]) -> list[dict]:
    cfg, model, _ = load_run(run, torch.device("cpu"))
    split = load_dataset("market1501", root)
    net = basic_network(model)
    loader = build_test_loader(split.train, height=cfg.height, width=cfg.width, batch_size=cfg.eval_batch_size,
                               num_workers=0)
    images = [batch["images"] for batch in loader]
    labels = part_labels(split.root, split.train, cfg.height, cfg.width)
    out = []
    with torch.no_grad():
        for ratio in ratios:
            masks = np.concatenate([attention_masks(net, x, cfg.erase_layer, ratio).numpy() for x in images])
            share = attention_share_per_part(masks, labels)
            out.append({"erase_ratio": ratio, "erase_layer": cfg.erase_layer,
                        "upper_coverage": region_coverage(masks, labels, LABELS.index(SALIENT_REGION)),
                        "mask_share": dict(zip(LABELS, share.tolist())), "images": len(split.train)})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True)
    parser.add_argument("--data-root", required=True)
    parser.add_argument("--ratios", type=float, nargs="+", default=[15, 20, 25, 30, 35, 40, 45, 50])
    parser.add_argument("--json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = coverage(args.run, args.data_root, args.ratios)
    for r in rows:
        print(f"R {r['erase_ratio']:g}: upper coverage {r['upper_coverage']:.3f}; mask share "
              + ", ".join(f"{k} {v:.3f}" for k, v in r["mask_share"].items()))
    if args.json:
        with open(args.json, "w") as stream:
            json.dump(rows, stream, indent=1)


if __name__ == "__main__":
    main()
