"""Generator version 3 (docs/mechanism.md, "Generator version 3"): the torso-occluded test sets, their records
and marker, the same scenes as version 2, and version 2 unchanged."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from aea.data.bodyparts import IMAGES_NAME, make_mechanism, part_label_path, parts_dir
from aea.data.datasets import MARKER_NAME, SPLIT_FOLDERS
from aea.errors import AEAError
from aea.io import read_json
from aea.mechanism import LABELS, REGIONS

SEED = 5
SIZE = {"train_ids": 12, "test_ids": 30, "min_cams": 2, "max_cams": 2, "train_imgs_per_cam": (1, 1),
        "test_imgs_per_cam": (3, 3), "distractors": 0, "junk": 0, "occlusion": 0.0}
N_TEST = 30 * 2 * 3
LABEL = {name: i for i, name in enumerate(LABELS)}


def digests(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and not p.name.startswith("aea_split")}


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("bodyparts-v3")
    out = {name: make_mechanism(base / name, occlusion=p, size=SIZE, seed=SEED, version=3, occluded_region=region)
           for name, p, region in (("p0", 0.0, "upper"), ("upper-p0.2", 0.2, "upper"), ("upper-p0.4", 0.4, "upper"),
                                   ("any-p1", 1.0, "any"), ("any-p0.4", 0.4, "any"))}
    out["v2-p0.4"] = make_mechanism(base / "v2", occlusion=0.4, size=SIZE, seed=SEED)
    return out


def occluded(release: Path) -> dict[str, str | None]:
    return {rel: r["occluded"] for rel, r in read_json(parts_dir(release) / IMAGES_NAME).items()}


def test_torso_occlusion_hides_the_whole_upper_body_at_rate_p_nested_across_p(made: dict[str, Path]) -> None:
    at = {p: occluded(made[f"upper-p{p}"]) for p in (0.2, 0.4)}
    for p, recs in at.items():
        hidden = {rel: r for rel, r in recs.items() if r}
        assert set(hidden.values()) == {"upper"}
        assert all(not rel.startswith(SPLIT_FOLDERS["train"]) for rel in hidden)  # training never occluded
        assert abs(len(hidden) - N_TEST * p) <= 4 * math.sqrt(N_TEST * p * (1 - p))
        marker = read_json(made[f"upper-p{p}"] / MARKER_NAME)
        assert marker["params"]["generator_version"] == 3 and marker["params"]["occluded_region"] == "upper"
        assert marker["constraints"]["test_images"] == N_TEST
        assert marker["constraints"]["occluded_test_images"] == {**dict.fromkeys(REGIONS, 0), "upper": len(hidden)}
    low = {rel for rel, r in at[0.2].items() if r}
    assert low and low < {rel for rel, r in at[0.4].items() if r}
    release = made["upper-p0.4"]
    for rel, region in at[0.4].items():
        labels = np.asarray(Image.open(part_label_path(release, release / rel)))
        # hidden: no upper-body pixel is left and the occluder is there; otherwise the torso shows, no occluder
        assert (labels == LABEL["upper"]).any() == (region is None), rel
        assert (labels == LABEL["occluder"]).any() == (region == "upper"), rel
        if region:  # the torso's neighbours stay visible: the head above, the shoes below
            assert (labels == LABEL["head"]).any() and (labels == LABEL["shoes"]).any()


def test_same_scenes_across_test_sets_and_as_version_2(made: dict[str, Path]) -> None:
    clean = digests(made["p0"])
    for name in ("upper-p0.2", "upper-p0.4", "any-p1"):
        other, hidden = digests(made[name]), occluded(made[name])
        train = [rel for rel in clean if rel.startswith(SPLIT_FOLDERS["train"])]
        assert train and all(clean[rel] == other[rel] for rel in train)  # the training split is byte-identical
        spared = [rel for rel, r in hidden.items() if not r]
        assert all(clean[rel] == other[rel] for rel in spared)
    # version 3 with "any" region draws exactly version 2's images, labels and records; only the marker differs
    v2, v3 = digests(made["v2-p0.4"]), digests(made["any-p0.4"])
    assert {rel for rel in v2 if v2[rel] != v3[rel]} == {MARKER_NAME}
    assert digests(parts_dir(made["v2-p0.4"])) == digests(parts_dir(made["any-p0.4"]))
    # the torso-occluded images of upper-p0.4 are the ones any-p0.4 occludes (the same u < p), whatever region
    assert {rel for rel, r in occluded(made["upper-p0.4"]).items() if r} == {
        rel for rel, r in occluded(made["any-p0.4"]).items() if r}


def test_any_p1_hides_one_region_of_every_test_image(made: dict[str, Path]) -> None:
    hidden = {rel: r for rel, r in occluded(made["any-p1"]).items() if not rel.startswith(SPLIT_FOLDERS["train"])}
    assert len(hidden) == N_TEST and all(hidden.values()) and set(hidden.values()) == set(REGIONS)
    counts = read_json(made["any-p1"] / MARKER_NAME)["constraints"]["occluded_test_images"]
    assert counts == {r: list(hidden.values()).count(r) for r in REGIONS} and sum(counts.values()) == N_TEST


def test_version_2_marker_and_refusals(made: dict[str, Path], tmp_path: Path) -> None:
    params = read_json(made["v2-p0.4"] / MARKER_NAME)["params"]
    assert params["generator_version"] == 2 and "occluded_region" not in params
    assert "occluded_test_images" not in read_json(made["v2-p0.4"] / MARKER_NAME)["constraints"]
    with pytest.raises(AEAError, match="needs version=3"):
        make_mechanism(tmp_path / "a", occlusion=0.4, size=SIZE, seed=SEED, occluded_region="upper")
    with pytest.raises(AEAError, match="unknown generator version 4"):
        make_mechanism(tmp_path / "b", size=SIZE, seed=SEED, version=4)
    with pytest.raises(AEAError, match="unknown occluded region 'torso'"):
        make_mechanism(tmp_path / "c", size=SIZE, seed=SEED, version=3, occluded_region="torso")
    # the same parameters again are a no-op; another region is a new data set in the same root
    again = make_mechanism(made["upper-p0.4"].parent, occlusion=0.4, size=SIZE, seed=SEED, version=3,
                           occluded_region="upper")
    assert again == made["upper-p0.4"]


def test_cli_makes_version_3_data(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`aea data make-mechanism --generator-version 3 --occluded-region upper`: the same data set the workflow's
    job makes (make_mechanism with version 3); an unknown version or region is one line naming the choices."""
    from aea.cli import main

    args = ["--occlusion", "0.4", "--seed", "3", "--size", "tiny"]
    assert main(["data", "make-mechanism", "--root", str(tmp_path / "cli"), "--generator-version", "3",
                 "--occluded-region", "upper", *args]) == 0
    made = make_mechanism(tmp_path / "lib", occlusion=0.4, seed=3, size="tiny", version=3, occluded_region="upper")
    assert digests(tmp_path / "cli" / made.name) == digests(made)
    params = read_json(made / MARKER_NAME)["params"]
    assert (params["generator_version"], params["occluded_region"]) == (3, "upper")
    assert main(["data", "make-mechanism", "--root", str(tmp_path / "x"), "--generator-version", "4"]) == 2
    assert main(["data", "make-mechanism", "--root", str(tmp_path / "x"), "--occluded-region", "torso"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["aea: error: unknown generator version 4; choose 2 or 3",
                   "aea: error: unknown occluded region 'torso'; choose one of any, head, upper, lower, shoes, item"]
