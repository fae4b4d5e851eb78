"""DukeMTMC-reID (Zheng et al., ICCV 2017): 1,404 people of DukeMTMC seen by 8 cameras, in Market-1501's layout.

    DukeMTMC-reID/{bounding_box_train,query,bounding_box_test}/0005_c2_f0046985.jpg

No junk; the gallery's 17,661 images include 408 gallery-only distractor ids.
"""

import re

from aea.data.families.base import Counts, Setting
from aea.data.families.folders import FileNames, FolderFamily

FAMILY = FolderFamily(
    name="dukemtmcreid",
    title="DukeMTMC-reID",
    folder="DukeMTMC-reID",
    settings=(Setting(name="dukemtmcreid", label="DukeMTMC-reID", cameras=8,
                      counts=Counts(train_images=16522, train_ids=702, query_images=2228, query_ids=702,
                                    gallery_images=17661)),),
    # person, camera, frame: 0005_c2_f0046985.jpg
    names=FileNames(re.compile(r"(\d+)_c(\d+)_f\d+\.jpg"), "0005_c2_f0046985.jpg"),
    file_name=lambda pid, cam, frame, rng: f"{pid}_c{cam}_f{frame:07d}.jpg",
    distractors="identities",
)
