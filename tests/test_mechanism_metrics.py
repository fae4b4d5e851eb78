"""Mechanism metrics of a run (aea.evaluate): attention IoU of the two networks and erased share per body part."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from aea import train as T
from aea.cli import main
from aea.config import load_profile, resolve
from aea.data.bodyparts import make_mechanism, part_label_path
from aea.data.datasets import Record, Split, load_dataset
from aea.evaluate import chance_map, evaluate_run, mechanism_metrics
from aea.io import read_json
from aea.mechanism import LABELS
from aea.models.aea import TwoNetworks
from aea.runs import METRICS_FILE

H, W = 64, 32
LABEL = {name: i for i, name in enumerate(LABELS)}


class Tapped(torch.nn.Module):
    """A stand-in network whose tapped activations are its input images (optionally mirrored)."""

    feature_dim = 1

    def __init__(self, mirror: bool = False) -> None:
        super().__init__()
        self.mirror = mirror
        self.weight = torch.nn.Parameter(torch.zeros(1))

    def tap(self, x: torch.Tensor, layer: str) -> torch.Tensor:
        return x.flip(-1) if self.mirror else x


def hand_split(tmp_path: Path) -> Split:
    """Two 64x32 images: black, a red block (rows 10-29, columns 0-19, label upper) and a grey band
    (rows 40-49, label lower), with label sidecars where the generator puts them."""
    release = tmp_path / "Market-1501-v15.09.15"
    image = np.zeros((H, W, 3), dtype=np.uint8)
    image[10:30, 0:20] = (255, 0, 0)
    image[40:50] = (40, 40, 40)
    labels = np.zeros((H, W), dtype=np.uint8)
    labels[10:30, 0:20] = LABEL["upper"]
    labels[40:50] = LABEL["lower"]
    records = []
    for i in range(2):
        path = release / "bounding_box_train" / f"000{i + 1}_c1s1_000001_00.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(path, format="PNG")  # lossless pixels, whatever the name says
        label_path = part_label_path(release, path)
        label_path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(labels).save(label_path)
        records.append(Record(str(path), i, 0))
    return Split("market1501", str(release), records, records, records, 2, 1)


def test_mechanism_metrics_by_hand(tmp_path):
    """R = 15 of 2,048 pixels = 307 < the red block's 400 pixels, all of equal (highest) attention, so the top-R %
    mask is the block (ties included): all erased pixels on the upper body; the mirrored network selects columns
    12-31, overlapping the block in 8 of 20 columns: IoU = 160 / 640 = 0.25."""
    split = hand_split(tmp_path)
    cfg = resolve(load_profile("tiny"), "market1501", "aea", {"erase_ratio": 15}, 0)
    model = TwoNetworks(Tapped(), Tapped(mirror=True))
    out = mechanism_metrics(model, cfg, split, torch.device("cpu"))
    assert out["attention_iou"]["per_image"] == pytest.approx([0.25, 0.25])
    assert out["attention_iou"]["mean"] == pytest.approx(0.25) and out["attention_iou"]["images"] == "query"
    assert out["erased_share_per_part"] == pytest.approx({**dict.fromkeys(LABELS, 0.0), "upper": 1.0})
    expected_pixels = {**dict.fromkeys(LABELS, 0.0), "upper": 400 / 2048, "lower": 320 / 2048,
                       "background": 1328 / 2048}
    assert out["pixel_share_per_part"] == pytest.approx(expected_pixels)
    assert (out["erase_layer"], out["erase_ratio"], out["images"]) == ("conv2", 15.0, 2)
    same = mechanism_metrics(TwoNetworks(Tapped(), Tapped()), cfg, split, torch.device("cpu"))
    assert same["attention_iou"]["per_image"] == [1.0, 1.0]
    one = mechanism_metrics(Tapped(), cfg, split, torch.device("cpu"))  # one network: no IoU, shares still
    assert "attention_iou" not in one and one["erased_share_per_part"]["upper"] == pytest.approx(1.0)


def test_no_part_labels_no_share(tmp_path):
    split = hand_split(tmp_path)
    split = Split(split.name, str(tmp_path / "elsewhere"), split.train, split.query, split.gallery, 2, 1)
    cfg = resolve(load_profile("tiny"), "market1501", "aea", {}, 0)
    out = mechanism_metrics(TwoNetworks(Tapped(), Tapped(mirror=True)), cfg, split, torch.device("cpu"))
    assert "erased_share_per_part" not in out and len(out["attention_iou"]["per_image"]) == 2


@pytest.fixture(scope="module")
def mechanism_roots(tmp_path_factory):
    base = tmp_path_factory.mktemp("mechanism")
    for p in (0.0, 0.4):
        make_mechanism(base / f"p{p}", variant="redundant", occlusion=p, size="tiny", seed=0)
    return base


def test_two_network_run_on_mechanism_data_records_iou_and_part_shares(mechanism_roots, tmp_path, monkeypatch):
    """A smoke-sized code path: train AEA 2 epochs x 2 iterations on generated v2 data, evaluate it on its own
    test set and, with `aea evaluate --data-root --out`, on the p = 0.4 test set of the same generator seed."""
    split = load_dataset("market1501", mechanism_roots / "p0.0")
    cfg = resolve(load_profile("tiny"), "market1501", "aea", {"erase_ratio": 15}, 0)
    run = tmp_path / "aea"
    T.train(cfg, split, run)
    metrics = evaluate_run(run, split)
    mech = metrics["mechanism"]
    assert mech["data"]["generator"] == "bodyparts" and mech["data"]["occlusion"] == 0.0
    assert mech["data"]["variant"] == "redundant" and mech["data"]["seed"] == 0
    ious = mech["attention_iou"]["per_image"]
    assert len(ious) == len(split.query) and all(0.0 <= v <= 1.0 for v in ious)
    assert mech["attention_iou"]["mean"] == pytest.approx(np.mean(ious))
    assert sum(mech["erased_share_per_part"].values()) == pytest.approx(1.0)
    assert sum(mech["pixel_share_per_part"].values()) == pytest.approx(1.0)
    assert mech["images"] == len(split.train) and metrics["test_root"] == split.root
    assert 0.0 < mech["chance_map_official"] < metrics["map_official"] + 0.5
    monkeypatch.delenv("AEA_DATA", raising=False)
    out = tmp_path / "metrics-p0.4.json"
    assert main(["evaluate", "--run", str(run), "--data-root", str(mechanism_roots / "p0.4"), "--out", str(out)]) == 0
    other = read_json(out)
    assert other["mechanism"]["data"]["occlusion"] == 0.4 and not (run / METRICS_FILE).exists()
    # same training split (byte-identical across p): the same erased share; other queries: other per-query APs
    assert other["mechanism"]["erased_share_per_part"] == pytest.approx(mech["erased_share_per_part"])
    assert other["per_query"]["query"] == metrics["per_query"]["query"]


def test_single_network_run_on_other_data_has_no_mechanism_record(tiny_market, tmp_path):
    cfg = resolve(load_profile("tiny"), "market1501", "baseline1", {"epochs": 1, "warmup_epochs": 0,
                                                                  "lr_decay_epoch": 1}, 0)
    T.train(cfg, tiny_market, tmp_path / "b1")
    assert evaluate_run(tmp_path / "b1", tiny_market)["mechanism"] is None


def test_chance_map_of_random_rankings_by_hand():
    """One query with one true match among G = 10 gallery images: a uniformly random ranking puts it at rank r
    with probability 1/G; the official (trapezoid) AP is 1 at r = 1 and (0 + 1/r) / 2 below, so the expected
    mAP is (1 + (H_10 - 1) / 2) / 10 = 0.1964; 400 draws land within 3 standard errors; a lone match gives 1."""
    q, qc = np.array([1]), np.array([0])
    assert chance_map(q, np.array([1]), qc, np.array([1])) == 1.0
    g, gc = np.array([1] + [2] * 9), np.ones(10, dtype=int)
    expected = (1 + (sum(1 / r for r in range(1, 11)) - 1) / 2) / 10
    assert expected == pytest.approx(0.19645, abs=1e-5)
    aps = np.array([1.0] + [1 / (2 * r) for r in range(2, 11)])
    stderr = aps.std() / np.sqrt(400)
    assert abs(chance_map(q, g, qc, gc, draws=400) - expected) < 3 * stderr
    assert chance_map(q, g, qc, gc) == chance_map(q, g, qc, gc)  # seeded
