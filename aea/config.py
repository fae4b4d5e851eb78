"""Run configuration: the one resolved record of how a run was made.

Profiles (``aea/profiles/<profile>.yaml``, shipped with the package) hold ``defaults``
for every run, ``dataset_defaults`` per dataset (the paper's R and margin differ on
CUHK03) and the sweep values; a profile names its ``base`` and lists only what
differs from it.  ``resolve`` layers defaults < dataset defaults < overrides
into a frozen ``RunConfig``; only the CLI and the Snakefile call it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import numbers
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from aea.errors import AEAError
from aea.io import DuplicateKeyError, read_yaml
from aea.methods import check_method
from aea.names import DATASETS, LAYERS
from kernels import BACKENDS, EraseError, check_ratio

# Readings of choices the paper leaves open (aea.methods and aea.models.aea say what each does).
TRIPLET_MODES = ("per_network", "joint")
PEER_FORMS = ("two_networks", "one_network")
TEST_FEATURE_NORMS = ("per_half", "concat")
PROFILE_DIR = Path(__file__).resolve().parent / "profiles"  # package data: found without the workflow
PROFILE_KEYS = ("profile", "base", "defaults", "dataset_defaults", "datasets", "seeds", "sweep_seeds", "group_seeds",
                "synthetic", "sweeps")


@dataclass(frozen=True)
class RunConfig:
    """Everything that determines a run. Field defaults are the paper's recipe (docs/paper.md)."""

    profile: str
    dataset: str
    method: str
    seed: int = 0
    data_root: str = "data"
    # model
    arch: str = "resnet50"
    base_width: int = 64  # trunk channels before expansion; 64 = torchvision's ResNet (narrower: small profiles)
    pretrained: str | None = "torchvision-cache"
    height: int = 256
    width: int = 128
    embed_dim: int = 512
    num_parts: int = 4
    dropout: float = 0.5
    # optimisation (optimizer, momentum, weight decay: unstated in the paper, usual reading)
    epochs: int = 100
    warmup_epochs: int = 10
    lr: float = 0.01
    lr_decay_epoch: int = 75
    lr_gamma: float = 0.1
    optimizer: str = "sgd"
    momentum: float = 0.9
    weight_decay: float = 5e-4
    batch_p: int = 8
    batch_k: int = 4
    max_iters_per_epoch: int | None = None
    # loss L = CE_basic + alpha1 * CE_complementary + alpha2 * triplet
    alpha1: float = 1.0
    alpha2: float = 1.0
    margin: float = 0.3
    triplet_mode: str = "per_network"  # unstated: one batch-hard triplet per network, or one over both (joint)
    peer_form: str = "two_networks"  # unstated: REDA/AOS as a second network, or one network augmented
    # a two-network run whose complementary network never reads the basic one takes its basic network from the
    # Baseline-1 run of the same seed and trains only the complementary network (aea.methods.basic_from_baseline1)
    share_basic: bool = True
    # erasing (fill: unstated in the paper; 0 in normalised space is the mean pixel)
    erase_ratio: float = 10.0
    erase_layer: str = "conv2"
    erase_fill: float = 0.0
    erase_backend: str = "auto"
    # data (augmentation: unstated in the paper; flip only by default)
    check_counts: bool = True  # refuse a release whose image counts differ from the documented ones
    flip: bool = True
    pad: int = 0
    num_workers: int = 2
    cache_images: bool = False  # keep decoded, resized training images in memory (small data sets only)
    eval_batch_size: int = 128
    test_feature_norm: str = "per_half"  # unstated: L2 each half then concatenate, or concatenate then L2
    # runtime
    device: str = "auto"
    amp: bool = True
    checkpoint_every: int = 1

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def hash(self) -> str:
        """Short stable hash of the resolved config (provenance)."""
        blob = json.dumps(self.to_dict(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


FIELD_TYPES = {f.name: f.type for f in dataclasses.fields(RunConfig)}
OVERRIDABLE = tuple(k for k in FIELD_TYPES if k not in ("profile", "dataset", "method", "seed"))


def format_value(value: Any) -> str:
    """Compact text of an override value for run names: 20.0 -> '20', 0.5 -> '0.5'."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def run_name(method: str, overrides: Mapping[str, Any]) -> str:
    """Directory name of a run: method, then ``-key_value`` per override in sorted key order."""
    name = method + "".join(f"-{k}_{format_value(overrides[k])}" for k in sorted(overrides))
    return check_path_name(name, "run name", "give override values of letters, digits, _ . - only (e.g. in sweeps)")


def parse_run_name(name: str) -> tuple[str, dict[str, Any]]:
    """Inverse of ``run_name``: 'aea-alpha1_0.5-erase_ratio_20' -> ('aea', {'alpha1': 0.5, 'erase_ratio': 20.0})."""
    method, *parts = name.split("-")
    check_method(method)
    overrides: dict[str, Any] = {}
    for part in parts:
        key = next((k for k in sorted(OVERRIDABLE, key=len, reverse=True) if part.startswith(k + "_")), None)
        if key is None:
            raise AEAError(f"run name {name!r}: {part!r} is not <key>_<value> with a known config key")
        overrides[key] = coerce(key, part[len(key) + 1:])
    return method, overrides


def coerce(key: str, value: Any) -> Any:
    """Convert a CLI/YAML value to the type of RunConfig field ``key``; refuse unknown keys."""
    if key not in FIELD_TYPES:
        raise AEAError(f"unknown config key {key!r}; valid keys: {', '.join(OVERRIDABLE)}")
    kind = FIELD_TYPES[key]
    if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
        if "None" in kind:
            return None
        raise AEAError(f"config key {key!r} cannot be empty; give a value of type {kind}")
    try:
        if kind.startswith("bool"):
            if isinstance(value, str):
                if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError(value)
                return value.lower() in ("true", "1", "yes")
            return bool(value)
        if kind.startswith("int"):
            if isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            return int(value)
        if kind.startswith("float"):
            return float(value)
    except (TypeError, ValueError):  # TypeError: a list or mapping where a number belongs
        raise AEAError(f"config key {key!r} needs a {kind.split(' ')[0]}, got {value!r}") from None
    return str(value)


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """Parse ``key=value`` strings into typed overrides."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise AEAError(f"override {item!r} is not key=value; write e.g. erase_ratio=20")
        out[key.strip()] = coerce(key.strip(), value.strip())
    return out


@dataclass(frozen=True)
class Profile:
    """A profile file: run defaults, per-dataset defaults, sweeps, datasets and seeds."""

    name: str
    defaults: dict[str, Any]
    dataset_defaults: dict[str, dict[str, Any]]
    datasets: tuple[str, ...]
    seeds: tuple[int, ...]
    synthetic: str | None
    sweeps: dict[str, list[Any]] = field(default_factory=dict)
    # the workflow trains all seeds of a run in one job, in turn (one process start); else one job per seed
    group_seeds: bool = False
    # the seeds of the sweep tables (7-9, Figs. 6-7) and the interpretations: the first ``sweep_seeds`` (a number)
    # of ``seeds`` in the file, all of them by default
    sweep_seeds: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if not self.sweep_seeds:
            object.__setattr__(self, "sweep_seeds", self.seeds)

    def base(self, dataset: str) -> dict[str, Any]:
        """Resolved values before run overrides: defaults < dataset defaults."""
        return {**self.defaults, **self.dataset_defaults.get(dataset, {})}

    def canonical(self, dataset: str, overrides: Mapping[str, Any]) -> dict[str, Any]:
        """Overrides typed and with those equal to the dataset's default dropped (one name per distinct run)."""
        base = resolve(self, dataset, "aea", {}, 0).to_dict()
        typed = {k: coerce(k, v) for k, v in overrides.items()}
        return {k: v for k, v in typed.items() if base[k] != v}


def load_profile(name_or_path: str) -> Profile:
    """Load ``aea/profiles/<name>.yaml`` (or a path to a YAML file) merged over its ``base`` chain."""
    path = profile_path(name_or_path, Path.cwd())
    raw = read_profile(path, ())
    defaults = {k: coerce(k, v) for k, v in raw["defaults"].items()}
    try:
        per_dataset = {d: {k: coerce(k, v) for k, v in (vals or {}).items()}
                       for d, vals in raw["dataset_defaults"].items()}
        datasets = tuple(raw.get("datasets") or DATASETS)
        seeds = raw.get("seeds") or [0]
        if not isinstance(seeds, list):
            raise TypeError(f"seeds: {seeds!r} is not a list")
        sweeps = {k: list(v) for k, v in raw["sweeps"].items()}
    except (AttributeError, TypeError, ValueError) as e:  # a scalar where a list or mapping belongs
        raise AEAError(f"{path}: {e} (dataset_defaults: dataset -> key: value, datasets/seeds/sweeps values: "
                       "lists); fix the profile file") from None
    for d in (*datasets, *per_dataset):
        check_dataset(d)
    seeds = tuple(check_seed(seed, f"{path}: seeds") for seed in seeds)
    if len(set(seeds)) != len(seeds):
        raise AEAError(f"{path}: seeds {list(seeds)} lists a seed twice (the mean and spread would count copies); "
                       "list each seed once")
    check_path_name(str(raw["profile"]), f"{path}: profile name", "set `profile:` to such a name (or rename the file)")
    if raw.get("synthetic") is not None:  # the workflow names the generated data's marker after it
        check_path_name(str(raw["synthetic"]), f"{path}: synthetic size", "use smoke, tiny, market-scale or full")
    sweep_seeds = raw.get("sweep_seeds", len(seeds))
    if isinstance(sweep_seeds, bool) or not isinstance(sweep_seeds, int) or sweep_seeds < 1:
        raise AEAError(f"{path}: sweep_seeds: {sweep_seeds!r} is not a number of seeds >= 1 (the sweeps and the "
                       "interpretations run the first that many of `seeds`); fix the profile file")
    group_seeds = raw.get("group_seeds", False)
    if not isinstance(group_seeds, bool):
        raise AEAError(f"{path}: group_seeds: {group_seeds!r} is not true or false; fix the profile file")
    return Profile(
        name=str(raw["profile"]),
        defaults=defaults,
        dataset_defaults=per_dataset,
        datasets=datasets,
        seeds=seeds,
        synthetic=raw.get("synthetic"),
        sweeps=sweeps,
        group_seeds=group_seeds,
        sweep_seeds=seeds[:sweep_seeds],
    )


def profile_path(name_or_path: str, relative_to: Path) -> Path:
    """A profile name (``aea/profiles/<name>.yaml``) or a YAML path, relative paths taken from ``relative_to``."""
    path = Path(name_or_path)
    path = PROFILE_DIR / f"{name_or_path}.yaml" if path.suffix not in (".yaml", ".yml") else relative_to / path
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in PROFILE_DIR.glob("*.yaml")))
        raise AEAError(f"profile {name_or_path!r} not found at {path}; use one of: {known} (or a YAML path)")
    return path


def read_profile(path: Path, children: tuple[Path, ...]) -> dict[str, Any]:
    """A profile file's raw values over those of its ``base`` (a profile name, or a path relative to the file).

    The file's values win; ``defaults`` and ``sweeps`` merge key by key, ``dataset_defaults`` per dataset and key.
    The name is never inherited: it is the file's ``profile`` key, else its file name.
    """
    if path.resolve() in children:
        chain = " -> ".join(str(p) for p in (*children, path.resolve()))
        raise AEAError(f"profile bases form a loop ({chain}); fix a `base:` key")
    raw = read_yaml_file(path, "fix the profile file") or {}
    if not isinstance(raw, dict):
        raise AEAError(f"{path}: a profile is a mapping of {', '.join(PROFILE_KEYS)}; fix the profile file")
    unknown = set(raw) - set(PROFILE_KEYS)
    if unknown:
        raise AEAError(f"{path}: unknown top-level keys {sorted(unknown)}; valid: {', '.join(PROFILE_KEYS)}")
    for key in ("defaults", "dataset_defaults", "sweeps"):
        if not isinstance(raw.get(key) or {}, dict):
            raise AEAError(f"{path}: `{key}` must be a mapping of key: value; fix the profile file")
    own = {**raw, "profile": raw.get("profile", path.stem)}
    if "base" not in own:
        return {**own, **{key: own.get(key) or {} for key in ("defaults", "dataset_defaults", "sweeps")}}
    base = read_profile(profile_path(str(own.pop("base")), path.parent), (*children, path.resolve()))
    merged = {**base, **own, "defaults": {**base["defaults"], **(own.get("defaults") or {})},
              "sweeps": {**base["sweeps"], **(own.get("sweeps") or {})}}
    merged["dataset_defaults"] = {
        d: {**base["dataset_defaults"].get(d, {}), **(own.get("dataset_defaults") or {}).get(d, {})}
        for d in {**base["dataset_defaults"], **(own.get("dataset_defaults") or {})}
    }
    return merged


def read_yaml_file(path: Path, fix: str) -> Any:
    """``path``'s YAML; an unreadable or malformed file is one AEAError line naming it, the place and ``fix``."""
    try:
        return read_yaml(path)
    except DuplicateKeyError as e:  # PyYAML alone would keep the last value without a word
        raise AEAError(f"{path}: {e}; keep one of them: {fix}") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise AEAError(f"{path} is not valid YAML ({getattr(e, 'problem', None) or type(e).__name__}{where}); "
                       f"{fix}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise AEAError(f"cannot read {path} ({e}); {fix}") from None


#: The seeds a run may have: what every random source (python, numpy, torch, CUDA) takes as it is, so no two
#: seeds of the range give one run (torch and numpy fold larger ones onto smaller ones).
SEED_LIMIT = 2**31
#: Names that become a folder or file name (profiles, run names): no separator, no `..`, nothing a shell quotes.
PATH_NAME = re.compile(r"[A-Za-z0-9_.-]+")


def check_seed(seed: Any, where: str = "--seed") -> int:
    """``seed`` as an int in 0 <= seed < 2**31; anything else is one AEAError line naming it and ``where``."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not 0 <= seed < SEED_LIMIT:
        raise AEAError(f"{where}: seed {seed!r} is not an integer in 0 <= seed < 2**31 ({SEED_LIMIT}); "
                       "give seeds in that range, e.g. 0, 1, 2")
    return int(seed)


def check_path_name(name: str, what: str, fix: str) -> str:
    """Refuse a ``name`` that becomes a path unless it is letters, digits, ``_ . -`` (and not ``.`` or ``..``):
    no profile or run name reaches outside its folder under results/."""
    if not PATH_NAME.fullmatch(name) or name in (".", ".."):
        raise AEAError(f"{what} {name!r} becomes a folder name: it may hold only letters, digits, _ . - "
                       f"(and not be . or ..); {fix}")
    return name


def check_dataset(name: str) -> None:
    if name not in DATASETS:
        raise AEAError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")


def data_root(profile_root: str) -> Path:
    """The data root: ``$AEA_DATA`` when set, else the profile's (relative to the working directory)."""
    return Path(os.environ.get("AEA_DATA") or profile_root)


def resolve(profile: Profile, dataset: str, method: str, overrides: Mapping[str, Any], seed: int) -> RunConfig:
    """defaults < dataset defaults < overrides, validated, as a frozen RunConfig."""
    check_dataset(dataset)
    check_method(method)
    seed = check_seed(seed)
    values = {**profile.base(dataset), **{k: coerce(k, v) for k, v in overrides.items()}}
    cfg = RunConfig(profile=profile.name, dataset=dataset, method=method, seed=seed, **values)
    validate(cfg)
    return cfg


# Ranges of numeric fields (``None`` passes where the field allows it): (test, what the value must be).
RANGES: dict[str, tuple[Callable[[float], bool], str]] = {
    "lr": (lambda v: v > 0, "> 0, e.g. lr=0.01"),
    "lr_gamma": (lambda v: v > 0, "> 0, e.g. lr_gamma=0.1"),
    "lr_decay_epoch": (lambda v: v >= 0, ">= 0 (0-based epoch of the step decay)"),
    "momentum": (lambda v: 0 <= v < 1, "in [0, 1), e.g. momentum=0.9"),
    "weight_decay": (lambda v: v >= 0, ">= 0, e.g. weight_decay=5e-4"),
    "alpha1": (lambda v: v >= 0, ">= 0 (a loss weight), e.g. alpha1=1"),
    "alpha2": (lambda v: v >= 0, ">= 0 (a loss weight), e.g. alpha2=1"),
    "dropout": (lambda v: 0 <= v < 1, "in [0, 1), e.g. dropout=0.5"),
    "height": (lambda v: v >= 16, ">= 16 pixels (the trunk divides it by 16), e.g. height=256"),
    "width": (lambda v: v >= 16, ">= 16 pixels (the trunk divides it by 16), e.g. width=128"),
    "base_width": (lambda v: v >= 1, ">= 1 (64 is torchvision's ResNet)"),
    "embed_dim": (lambda v: v >= 1, ">= 1, e.g. embed_dim=512"),
    "num_parts": (lambda v: v >= 1, ">= 1, e.g. num_parts=4"),
    "max_iters_per_epoch": (lambda v: v >= 1, ">= 1, or none for whole epochs"),
    "pad": (lambda v: v >= 0, ">= 0"),
    "num_workers": (lambda v: v >= 0, ">= 0 (0 loads images in the main process)"),
    "eval_batch_size": (lambda v: v >= 1, ">= 1, e.g. eval_batch_size=128"),
    "checkpoint_every": (lambda v: v >= 1, ">= 1 (epochs between checkpoints)"),
}


def validate(cfg: RunConfig) -> None:
    """Refuse values that cannot make a meaningful run, each with the fix."""
    try:
        check_ratio(cfg.erase_ratio)
    except EraseError as exc:
        raise AEAError(f"erase_ratio: {exc}") from None
    if cfg.erase_layer not in LAYERS:
        raise AEAError(f"erase_layer={cfg.erase_layer!r} is not one of {', '.join(LAYERS)}")
    if cfg.margin <= 0:
        raise AEAError(f"margin={cfg.margin} must be positive, e.g. 0.3")
    if cfg.epochs < 1 or not 0 <= cfg.warmup_epochs <= cfg.epochs:
        raise AEAError(f"need epochs >= 1 and 0 <= warmup_epochs <= epochs (got {cfg.epochs}, {cfg.warmup_epochs})")
    if cfg.batch_p < 2 or cfg.batch_k < 2:
        raise AEAError("batch_p and batch_k must both be >= 2 for the batch-hard triplet loss")
    for key, choices in (("triplet_mode", TRIPLET_MODES), ("peer_form", PEER_FORMS),
                         ("test_feature_norm", TEST_FEATURE_NORMS)):
        if getattr(cfg, key) not in choices:
            raise AEAError(f"{key}={getattr(cfg, key)!r}; choose one of {', '.join(choices)}")
    if cfg.optimizer not in ("sgd", "adam"):
        raise AEAError(f"optimizer={cfg.optimizer!r}; choose sgd or adam")
    if cfg.erase_backend not in BACKENDS:
        raise AEAError(f"erase_backend={cfg.erase_backend!r}; choose one of {', '.join(BACKENDS)}")
    if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", cfg.device):
        raise AEAError(f"device={cfg.device!r}; choose auto, cpu, cuda or cuda:N")
    for key, kind in FIELD_TYPES.items():
        value = getattr(cfg, key)
        if kind.startswith("float") and not math.isfinite(value):
            raise AEAError(f"{key}={value} is not a finite number; give a finite value")
    for key, (ok, need) in RANGES.items():
        value = getattr(cfg, key)
        if value is not None and not ok(value):
            raise AEAError(f"{key}={value} is out of range: it must be {need}")


def read_run_config(path: Path) -> RunConfig:
    """The RunConfig in a run's ``config.yaml``; an empty, malformed or incomplete file is one AEAError line."""
    fix = f"the run's config is damaged: delete {path.parent} and train the run again"
    values = read_yaml_file(path, fix)
    if not isinstance(values, dict):
        raise AEAError(f"{path} is empty or not a mapping of config keys; {fix}")
    try:
        return config_from_dict(values, path)
    except TypeError as e:  # a required key (profile, dataset, method) is missing
        raise AEAError(f"{path} is incomplete ({e}); {fix}") from None


def config_from_dict(values: Mapping[str, Any], source: str | os.PathLike = "config") -> RunConfig:
    """Rebuild a RunConfig from a run's config.yaml (``source``, named in errors); refuses keys this version does
    not know."""
    unknown = set(values) - set(FIELD_TYPES)
    if unknown:
        raise AEAError(f"{source} has unknown keys {sorted(unknown)}: it is not a run config of this version of aea; "
                       "give a run directory that this aea wrote, or another --out")
    return RunConfig(**{k: coerce(k, v) if k in OVERRIDABLE else v for k, v in values.items()})
