"""`aea show`: pictures of a trained run, with the sizes and contents they promise."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from aea import show
from aea.config import load_profile, resolve
from aea.errors import AEAError
from aea.train import train
from aea.viz import MATCH_COLOUR, MISMATCH_COLOUR, PANEL_H, PANEL_W, rank_list_layout


@pytest.fixture(scope="module")
def run(tiny_market, tmp_path_factory):
    cfg = resolve(load_profile("tiny"), "market1501", "aea", {"epochs": 2, "max_iters_per_epoch": 1}, 0)
    out = tmp_path_factory.mktemp("run")
    train(cfg, tiny_market, out)
    return out


def test_attention_and_erasing_pictures_have_one_panel_per_image(run, tiny_market, tmp_path):
    show.show_attention(run, tiny_market, tmp_path / "att.png", count=3)
    show.show_erasing(run, tiny_market, tmp_path / "erase.png", count=4)
    assert Image.open(tmp_path / "att.png").size == (3 * PANEL_W, 3 * PANEL_H)  # image, basic, complementary
    assert Image.open(tmp_path / "erase.png").size == (4 * PANEL_W, 2 * PANEL_H)


def test_rank_list_borders_mark_true_and_false_matches(run, tiny_market, tmp_path):
    show.show_ranks(run, tiny_market, tmp_path / "ranks.png", query=0, top=10)
    image = np.asarray(Image.open(tmp_path / "ranks.png").convert("RGB"))
    (width, height), boxes = rank_list_layout(10)
    assert image.shape[:2] == (height, width)
    colours = {tuple(image[y0, x0]) for x0, y0, _, _ in boxes[1:]}  # top-left border pixel of each gallery tile
    assert colours <= {MATCH_COLOUR, MISMATCH_COLOUR} and len(colours) >= 1
    with pytest.raises(AEAError, match="outside"):
        show.show_ranks(run, tiny_market, tmp_path / "x.png", query=len(tiny_market.query))
