"""The registry of dataset families: one module per family under ``aea/data/families/``, each defining ``FAMILY``
(a ``base.DatasetFamily``: settings and their labels, folder, file names, official counts, cameras, and the hooks
that parse it and generate a copy of it). See docs/extending.md, "Add a dataset".

Everything that lists datasets reads this: ``aea.names.DATASETS`` (the settings, in the order below), the
parser (``aea.data.datasets``), the generator (``aea.data.synthetic``) and the workflow. Standard library only,
so the CLI and the Snakefile read it without importing numpy or torch.
"""

from __future__ import annotations

from importlib import import_module

from aea.data.families.base import DatasetFamily, Setting
from aea.errors import AEAError

#: The family modules, in the paper's table order (the order of aea.names.DATASETS and of the tables' rows).
MODULES = (
    "market1501",
    "cuhk03",
    "dukemtmcreid",
)

FAMILIES: tuple[DatasetFamily, ...] = tuple(import_module(f"{__name__}.{module}").FAMILY for module in MODULES)
#: Every evaluation setting by name, in table order.
SETTINGS: dict[str, Setting] = {s.name: s for family in FAMILIES for s in family.settings}
_FAMILY_OF: dict[str, DatasetFamily] = {}
for _family in FAMILIES:  # a family's name and its settings' names, each naming this family only
    for _name in {_family.name, *(s.name for s in _family.settings)}:
        if _FAMILY_OF.setdefault(_name, _family) is not _family:
            raise ValueError(f"dataset name {_name!r} is used by two families ({_FAMILY_OF[_name].name}, "
                             f"{_family.name}); rename one in its module under aea/data/families/")


def family_of(name: str) -> DatasetFamily:
    """The family holding setting ``name`` (or named ``name``, as `aea data make-synthetic --dataset cuhk03`)."""
    try:
        return _FAMILY_OF[name]
    except KeyError:
        raise AEAError(f"unknown dataset {name!r}; choose one of {', '.join(SETTINGS)}") from None


def release_of(setting: str) -> str:
    """The setting whose generation makes the release holding ``setting``: its family's first (one generation
    of cuhk-03.mat serves both CUHK03 settings), so the workflow generates each release once."""
    return family_of(setting).settings[0].name
