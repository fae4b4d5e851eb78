"""CUHK03 (Li et al., CVPR 2014) under the new protocol (767 training / 700 test ids, Zhong et al., CVPR 2017),
in two settings from one release: boxes drawn by hand (labeled) and by a detector (detected).

Two layouts under the data root, CUHK03-NP's folders preferred where present::

    cuhk03-np/{labeled,detected}/{bounding_box_train,query,bounding_box_test}/0001_c1_1.png
    cuhk03_release/cuhk-03.mat + cuhk03_new_protocol_config_{labeled,detected}.mat  (beside cuhk03_release/)

The .mat release's images are extracted once per setting into cuhk03_release/images_<setting>/ as
campair_pid_view_index.png, the names the protocol configs list. Counts: zhunzhong07/person-re-ranking
CUHK03-NP/README.md (labeled 7,368/1,400/5,328, detected 7,365/1,400/5,332). The codec (reading and writing
the MATLAB files, the generated release) is ``aea.data.families.cuhk03_format``, imported by the hooks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aea.data.families.base import DEFAULT_LAYOUT, MARKER_NAME, Counts, DatasetFamily, Located, Setting, fix_root
from aea.data.families.folders import FileNames, parse_folders, require_folders
from aea.errors import AEAError

if TYPE_CHECKING:
    from aea.data.synthetic import SyntheticSize


@dataclass(frozen=True, kw_only=True)
class Cuhk03Family(DatasetFamily):
    """CUHK03's release: the .mat (``folder``) or CUHK03-NP's folders (``np_folder``)."""

    np_folder: str
    np_names: FileNames
    mat: str  # inside ``folder``
    mat_names: re.Pattern[str]  # the extracted images' names (as the protocol lists them): pair, pid, view, index
    config: str  # a setting's protocol config at the data root, "{}" standing for its variant
    images: str  # a setting's extracted images inside ``folder``, "{}" standing for its variant

    def config_name(self, variant: str) -> str:
        """File name of the new-protocol (767/700) split of one setting, kept at the data root."""
        return self.config.format(variant)

    def images_name(self, variant: str) -> str:
        return self.images.format(variant)

    @property
    def variants(self) -> tuple[str, ...]:
        return tuple(s.variant for s in self.settings)

    def locate(self, setting: Setting, root: Path) -> Located:
        variant = setting.variant
        np_dir = root / self.np_folder
        if np_dir.is_dir():
            dataset_dir = np_dir / variant
            if not dataset_dir.is_dir():
                raise AEAError(f"wrong layout: {dataset_dir} is missing (expected {', '.join(self.variants)} inside "
                               f"{np_dir}); unpack CUHK03-NP there unchanged")
            return Located(dataset_dir, dataset_dir / "aea_split.json", np_dir / MARKER_NAME, "CUHK03-NP folders",
                           require_folders(dataset_dir), [],
                           lambda: parse_folders(dataset_dir, self.np_names, setting.cameras))
        release = root / self.folder
        mat_path, config = release / self.mat, root / self.config_name(variant)
        if not release.is_dir() and not config.exists():
            raise AEAError(f"{setting.name} not found: expected {np_dir}/{variant}/ (CUHK03-NP) or {mat_path} with "
                           f"{config}; put the release there, {fix_root(root, setting.name)}")
        for path in (mat_path, config):
            if not path.is_file():
                raise AEAError(f"wrong layout: {path} is missing (CUHK03 needs {self.folder}/{self.mat} and "
                               f"{self.config_name(variant)} in {root})")
        from aea.data.families import cuhk03_format

        images_dir = release / self.images_name(variant)
        cuhk03_format.extract(mat_path, variant, images_dir)
        return Located(release, release / f"aea_split_{variant}.json", release / MARKER_NAME,
                       "cuhk-03.mat + protocol config", [images_dir], [mat_path, config],
                       lambda: cuhk03_format.parse_mat(config, mat_path, images_dir))

    def release_dir(self, layout: str) -> str:
        return self.folder if layout == DEFAULT_LAYOUT else self.np_folder

    def root_files(self, layout: str) -> tuple[str, ...]:
        return tuple(self.config_name(v) for v in self.variants) if layout == DEFAULT_LAYOUT else ()

    def derived_entries(self) -> tuple[str, ...]:
        return tuple(self.images_name(v) for v in self.variants)

    def full_size(self, protocol_dir: Path) -> tuple[object, Any]:
        from aea.data.families import cuhk03_format

        return cuhk03_format.full_release(protocol_dir)

    def generate(self, out: Path, layout: str, size: SyntheticSize | None, seed: int,
                 full: Any = None) -> dict[str, dict[str, int]]:
        from aea.data.families import cuhk03_format

        return cuhk03_format.write(layout, out, full or cuhk03_format.generated_release(size, seed), seed)


FAMILY = Cuhk03Family(
    name="cuhk03",
    title="CUHK03",
    folder="cuhk03_release",
    settings=(
        Setting(name="cuhk03-labeled", label="CUHK03 labeled", variant="labeled", cameras=2,  # a pair's two views
                counts=Counts(train_images=7368, train_ids=767, query_images=1400, query_ids=700,
                              gallery_images=5328)),
        Setting(name="cuhk03-detected", label="CUHK03 detected", variant="detected", cameras=2,
                counts=Counts(train_images=7365, train_ids=767, query_images=1400, query_ids=700,
                              gallery_images=5332)),
    ),
    layouts=(DEFAULT_LAYOUT, "np"),  # the .mat release, or CUHK03-NP's folders
    has_full_size=True,  # images for exactly the real protocol configs' file lists
    np_folder="cuhk03-np",
    np_names=FileNames(re.compile(r"(-1|\d+)_c(\d+)_\d+\.png"), "0001_c1_1.png"),
    mat="cuhk-03.mat",
    mat_names=re.compile(r"(\d+)_(\d+)_([12])_(\d+)\.png"),  # campair_pid_view_index.png, 1-based
    config="cuhk03_new_protocol_config_{}.mat",
    images="images_{}",
)
