"""Market-1501 (Zheng et al., ICCV 2015): 1,501 people seen by 6 cameras, in its own folder layout.

    Market-1501-v15.09.15/{bounding_box_train,query,bounding_box_test}/0002_c1s1_000451_03.jpg

bounding_box_test holds 19,732 files = 13,115 of the 750 test ids + 2,798 distractors (0000_, kept) + 3,819
junk (-1_, dropped); 15,913 remain, as torchreid reports.
"""

import re

from aea.data.families.base import Counts, Setting
from aea.data.families.folders import FileNames, FolderFamily


def file_name(pid: str, cam: int, frame: int, rng) -> str:
    """The generator's names: person, camera, sequence (drawn), frame, box index (drawn)."""
    return f"{pid}_c{cam}s{rng.integers(1, 7)}_{frame:06d}_{rng.integers(0, 8):02d}.jpg"


FAMILY = FolderFamily(
    name="market1501",
    title="Market-1501",
    folder="Market-1501-v15.09.15",
    settings=(Setting(name="market1501", label="Market-1501", cameras=6,
                      counts=Counts(train_images=12936, train_ids=751, query_images=3368, query_ids=750,
                                    gallery_images=15913, junk_images=3819)),),
    # person (-1 junk, 0000 distractor), camera, sequence, frame, box: 0002_c1s1_000451_03.jpg
    names=FileNames(re.compile(r"(-1|\d+)_c(\d+)s\d+_\d+_\d+\.jpg"), "0002_c1s1_000451_03.jpg"),
    file_name=file_name,
    distractors="images",
    junk=True,
)
