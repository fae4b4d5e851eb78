"""C1-C3 and the attention IoU on hand-computed cases."""

import numpy as np
import pytest

from aea.mechanism import (
    attention_share_per_part,
    constraint_report,
    hidden_region_uniqueness,
    mask_iou,
    region_coverage,
    unique_share,
)

# 4 identities x 5 regions (head, upper, lower, shoes, item)
CODES = np.array([
    [0, 0, 0, 0, 0],
    [0, 1, 0, 0, 1],
    [1, 2, 1, 0, 0],
    [1, 3, 1, 1, 1],
])


def test_unique_share_by_hand():
    codes = np.array([[0, 0], [0, 1], [1, 1]])
    assert unique_share(codes, [0]) == pytest.approx(1 / 3)  # 0, 0, 1: only the last is alone
    assert unique_share(codes, [1]) == pytest.approx(1 / 3)  # 0, 1, 1: only the first
    assert unique_share(codes, [0, 1]) == 1.0
    assert unique_share(codes, []) == 0.0  # nothing visible: everyone looks alike
    assert unique_share(codes[:1], []) == 1.0
    with pytest.raises(ValueError):
        unique_share(np.zeros((0, 5)), [0])


def test_hidden_region_uniqueness_by_hand():
    # hiding upper and item leaves (head, lower, shoes) = 000, 000, 110, 111: two of four unique
    assert hidden_region_uniqueness(CODES, [1, 4]) == 0.5
    # hiding upper alone leaves 0000, 0001, 1100, 1111: all unique
    assert hidden_region_uniqueness(CODES, [1]) == 1.0
    # hiding head, lower and shoes leaves (upper, item): upper differs everywhere
    assert hidden_region_uniqueness(CODES, [0, 2, 3]) == 1.0
    # only the item visible: 0, 1, 0, 1: nobody unique
    assert hidden_region_uniqueness(CODES, [0, 1, 2, 3]) == 0.0


def test_constraint_report_by_hand():
    report = constraint_report(CODES)
    assert report["c1_hide_one"] == {"head": 1.0, "upper": 1.0, "lower": 1.0, "shoes": 1.0, "item": 1.0}
    assert len(report["c1_hide_two"]) == 10
    assert report["c1_hide_two"]["upper+item"] == 0.5
    # every other pair keeps the upper body (all different) or is upper+head/lower/shoes (all unique, by hand)
    assert all(v == 1.0 for k, v in report["c1_hide_two"].items() if k != "upper+item")
    assert report["c1_min_hide_one"] == 1.0 and report["c1_min_hide_two"] == 0.5
    assert report["c1_passes"] is False  # 0.5 < 0.80
    assert report["c2"] == 1.0 and report["c2_passes"] is True
    assert report["salient_alone"] == 1.0


def test_constraint_thresholds_are_inclusive_and_strict_below():
    # 20 identities, region 0 all different, the others constant: hiding region 0 leaves nobody unique
    codes = np.zeros((20, 5), dtype=int)
    codes[:, 0] = np.arange(20)
    report = constraint_report(codes, salient=1)
    assert report["c1_min_hide_one"] == 0.0 and not report["c1_passes"]
    assert report["c2"] == 1.0 and report["c2_passes"]  # hiding region 1 hides nothing that identifies
    assert report["salient_alone"] == 0.0
    # 40 identities distinct in every region, except that 39 copies 38 outside region 0:
    # hiding region 0 leaves 38 of 40 unique = 0.95, the threshold itself, which passes
    codes = np.stack([np.arange(40)] * 5, axis=1)
    codes[39, 1:] = codes[38, 1:]
    report = constraint_report(codes)
    assert report["c1_hide_one"]["head"] == pytest.approx(0.95)
    assert report["c1_min_hide_one"] == pytest.approx(0.95) and report["c1_min_hide_two"] == pytest.approx(0.95)
    assert report["c1_passes"] and report["c2"] == 1.0
    codes[37, 1:] = codes[36, 1:]  # a second such pair: 36 of 40 = 0.90 < 0.95
    report = constraint_report(codes)
    assert report["c1_min_hide_one"] == pytest.approx(0.9) and not report["c1_passes"]


def test_attention_share_per_part_by_hand():
    labels = np.array([[[0, 1, 2], [2, 2, 5]],
                       [[3, 3, 4], [0, 0, 0]]])
    masks = np.array([[[True, False, True], [True, False, False]],   # labels 0, 2, 2
                      [[True, True, True], [False, False, False]]])  # labels 3, 3, 4
    share = attention_share_per_part(masks, labels)
    np.testing.assert_allclose(share, [1 / 6, 0, 2 / 6, 2 / 6, 1 / 6, 0, 0])
    np.testing.assert_array_equal(attention_share_per_part(np.zeros_like(masks), labels), np.zeros(7))
    with pytest.raises(ValueError, match="resize the labels"):
        attention_share_per_part(masks, labels[:, :1])
    with pytest.raises(ValueError, match="boolean"):
        attention_share_per_part(masks.astype(np.uint8), labels)
    with pytest.raises(ValueError, match=r"\[0, 7\)"):
        attention_share_per_part(masks, labels + 3)


def test_mask_iou_by_hand():
    a = np.array([[[True, True], [False, False]],
                  [[True, False], [False, False]],
                  [[True, False], [False, False]],
                  [[False, False], [False, False]]])
    b = np.array([[[True, False], [True, False]],   # intersection 1, union 3
                  [[True, False], [False, False]],  # identical
                  [[False, True], [False, False]],  # disjoint
                  [[False, False], [False, False]]])  # both empty
    np.testing.assert_allclose(mask_iou(a, b), [1 / 3, 1.0, 0.0, 1.0])
    np.testing.assert_allclose(mask_iou(b, a), mask_iou(a, b))
    with pytest.raises(ValueError, match="differ in shape"):
        mask_iou(a, b[:2])


def test_region_coverage_by_hand():
    labels = np.array([[[2, 2, 0], [2, 3, 3]],
                       [[2, 0, 0], [0, 0, 0]]])
    masks = np.array([[[True, False, True], [True, True, False]],
                      [[False, True, False], [False, False, False]]])
    # upper body (2): 4 pixels, 2 selected (the first image's (0, 0) and (1, 0)); lower (3): 1 of 2
    assert region_coverage(masks, labels, 2) == pytest.approx(0.5)
    assert region_coverage(masks, labels, 3) == pytest.approx(0.5)
    assert region_coverage(masks, labels, 0) == pytest.approx(2 / 6)
    assert np.isnan(region_coverage(masks, labels, 5))  # no such pixel
    assert region_coverage(np.ones_like(masks), labels, 2) == 1.0
    with pytest.raises(ValueError, match="resize the labels"):
        region_coverage(masks, labels[:, :1], 2)
