"""Pictures: pixel sizes from the documented layout, rank-list border colours, atomic writes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from aea import viz
from aea.errors import AEAError


def solid(colour: tuple[int, int, int], h: int = 256, w: int = 128) -> np.ndarray:
    return np.broadcast_to(np.array(colour, np.uint8), (h, w, 3)).copy()


def pixels(path) -> np.ndarray:
    with Image.open(path) as im:
        assert im.format == "PNG"
        return np.asarray(im.convert("RGB"))


def only_files(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_denormalize_inverts_imagenet_normalisation():
    rgb = np.array([[0, 128, 255]], np.float32) / 255.0                     # one pixel
    norm = (rgb.reshape(3, 1, 1) - np.array(viz.IMAGENET_MEAN)[:, None, None]) / \
        np.array(viz.IMAGENET_STD)[:, None, None]
    out = viz.denormalize(norm[None])
    assert out.dtype == np.uint8 and out.shape == (1, 1, 1, 3)
    assert out[0, 0, 0].tolist() == [0, 128, 255]
    assert viz.denormalize(np.full((1, 3, 2, 2), 50.0))[0, 0, 0].tolist() == [255, 255, 255]  # clipped


def test_plot_attention_size_and_hot_spot(tmp_path):
    images = [solid((128, 128, 128)) for _ in range(3)]
    amap = np.zeros((64, 32), np.float32)
    amap[:16, :] = 1.0                      # attention on the top quarter only
    out = tmp_path / "attention.png"
    viz.plot_attention(images, [amap] * 3, out)
    px = pixels(out)
    assert px.shape == (2 * viz.PANEL_H, 3 * viz.PANEL_W, 3)
    # bottom row = overlay: jet red on the hot top of the panel, jet blue below; top row stays grey
    col = viz.PANEL_W * 3 // 2
    hot, cold = px[viz.PANEL_H + 30, col].astype(int), px[2 * viz.PANEL_H - 30, col].astype(int)
    assert hot[0] > hot[2] + 60 and cold[2] > cold[0] + 60
    assert np.abs(px[viz.PANEL_H // 2, col].astype(int) - 128).max() <= 2
    assert only_files(tmp_path) == ["attention.png"]
    with pytest.raises(ValueError, match="as many attention maps"):
        viz.plot_attention(images, [amap], tmp_path / "bad.png")


def test_plot_attention_of_both_networks_side_by_side(tmp_path):
    """Third row: the complementary network's map, here hot at the bottom where the basic one is cold."""
    images = [solid((128, 128, 128)) for _ in range(2)]
    top, bottom = np.zeros((64, 32), np.float32), np.zeros((64, 32), np.float32)
    top[:16], bottom[-16:] = 1.0, 1.0
    out = tmp_path / "both.png"
    viz.plot_attention(images, [top] * 2, out, complementary_maps=[bottom] * 2)
    px = pixels(out).astype(int)
    assert px.shape == (3 * viz.PANEL_H, 2 * viz.PANEL_W, 3)
    col = viz.PANEL_W // 2
    basic_hot, comp_cold = px[viz.PANEL_H + 30, col], px[2 * viz.PANEL_H + 30, col]
    comp_hot = px[3 * viz.PANEL_H - 30, col]
    assert basic_hot[0] > basic_hot[2] + 60 and comp_cold[2] > comp_cold[0] + 60 and comp_hot[0] > comp_hot[2] + 60
    with pytest.raises(ValueError, match="as many attention maps"):
        viz.plot_attention(images, [top] * 2, tmp_path / "bad.png", complementary_maps=[bottom])


def test_plot_erasing_size_from_paths(tmp_path):
    paths = []
    for i in range(4):
        p = tmp_path / f"img{i}.png"
        Image.fromarray(solid((10 * i, 0, 0), 100, 50)).save(p)
        paths.append(p)
    out = tmp_path / "figs" / "erasing.png"
    viz.plot_erasing(paths, [solid((0, 0, 0), 100, 50)] * 4, out)
    assert pixels(out).shape == (2 * viz.PANEL_H, 4 * viz.PANEL_W, 3)
    assert only_files(out.parent) == ["erasing.png"]


def test_rank_list_borders_are_green_and_red_at_known_pixels(tmp_path):
    is_match = [True, False, True, True, False, False, True, False, False, True, True, True]
    gallery = [solid((0, 0, 255 - 10 * i)) for i in range(12)]
    out = tmp_path / "ranks.png"
    viz.plot_rank_list(solid((255, 255, 0)), gallery, is_match, out, top=10)
    px = pixels(out)
    (width, height), boxes = viz.rank_list_layout(10)
    assert px.shape == (height, width, 3) and len(boxes) == 11
    x0, y0, x1, y1 = boxes[0]
    assert px[y0 + 1, x0 + 1].tolist() == list(viz.QUERY_COLOUR)
    assert px[(y0 + y1) // 2, (x0 + x1) // 2].tolist() == [255, 255, 0]           # the query image
    for k, (x0, y0, x1, y1) in enumerate(boxes[1:]):
        colour = list(viz.MATCH_COLOUR if is_match[k] else viz.MISMATCH_COLOUR)
        for y, x in ((y0, x0), (y1 - 1, x1 - 1), ((y0 + y1) // 2, x0 + viz.BORDER - 1), (y1 - 2, (x0 + x1) // 2)):
            assert px[y, x].tolist() == colour, (k, y, x)
        assert px[(y0 + y1) // 2, (x0 + x1) // 2].tolist() == [0, 0, 255 - 10 * k]  # rank k+1 image inside
    assert px[boxes[1][1] + 5, boxes[1][0] - 2].tolist() == list(viz.BACKGROUND)  # gap between tiles
    assert only_files(tmp_path) == ["ranks.png"]


def test_rank_list_refuses_unreadable_image_and_writes_nothing(tmp_path):
    out = tmp_path / "ranks.png"
    with pytest.raises(AEAError, match="cannot read image"):
        viz.plot_rank_list(solid((1, 2, 3)), [tmp_path / "missing.jpg"], [True], out)
    assert only_files(tmp_path) == []
    with pytest.raises(ValueError, match="one flag per gallery image"):
        viz.plot_rank_list(solid((1, 2, 3)), [solid((1, 2, 3))], [True, False], out)


def test_plot_sweep_size_and_atomic_replace(tmp_path):
    rows = [{"dataset": ds, "metric": m, "erase_ratio": r, "mean": 50 + r / 10, "std": np.nan if ds == "b" else 1.0}
            for ds in ("a", "b") for m in ("rank1", "mAP") for r in (5.0, 10.0, 20.0)]
    df = pd.DataFrame(rows)
    paper = pd.DataFrame([{"dataset": "a", "metric": "rank1", "erase_ratio": 10.0, "value": 60.0},
                          {"dataset": "a", "metric": "mAP", "erase_ratio": 10.0, "value": np.nan}])
    out = tmp_path / "fig6.png"
    out.write_bytes(b"old")
    viz.plot_sweep(df, "erase_ratio", out, paper=paper, labels={"a": "Market-1501"})
    assert pixels(out).shape == (viz.SWEEP_H, 2 * viz.SWEEP_W, 3)
    viz.plot_sweep(df, "erase_ratio", out, metrics=("rank1",))
    assert pixels(out).shape == (viz.SWEEP_H, viz.SWEEP_W, 3)
    assert only_files(tmp_path) == ["fig6.png"]
    with pytest.raises(ValueError, match="no column 'margin'"):
        viz.plot_sweep(df, "margin", out)
