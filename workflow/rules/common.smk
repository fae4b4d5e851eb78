# Helpers of the rules, kept apart from them (the snakemake-workflows convention): the settings check,
# where results go, what each job needs and how it calls `aea`.

import os
import time
from pathlib import Path
from types import SimpleNamespace

from snakemake.exceptions import WorkflowError

from aea import tables as T
from aea.config import DATASETS, data_root, load_profile, parse_run_name, read_yaml_file, resolve, run_name
from aea.data.families import release_of
from aea.errors import AEAError
from aea.io import read_yaml
from aea.runs import METRICS_FILE, MODEL_FILE, RUNS_ROOT, profile_runs, run_inputs, run_path
from aea.tables.mechanism import mechanism_files

PAPER_DIR = os.path.join(workflow.basedir, "results", "paper")  # reference values ship with the code
ENV = "../envs/aea.yaml"  # the software of every rule (relative to the rule files)
TABLE_NAMES = tuple(T.TABLES)
# The setting whose generation makes each setting's release (aea.data.families: CUHK03 labeled and detected
# come from one cuhk-03.mat, generated once).
RELEASE = {dataset: release_of(dataset) for dataset in DATASETS}


def check_config_keys(config, schema):
    """Refuse unknown workflow settings (a typo such as `profil=tiny`) with the valid ones listed.

    snakemake.utils.validate then checks types and ranges; its message for an unknown key does not list the
    valid ones."""
    if "moved_to" in config:  # the stub left where the SLURM settings were (workflow/profiles/slurm/)
        raise WorkflowError(f"workflow/profiles/slurm moved to {config['moved_to']}: pass --workflow-profile "
                            f"{config['moved_to']} (the same SLURM settings; 'profile' names the run profiles only)")
    valid = read_yaml(os.path.join(workflow.basedir, schema))["properties"]
    unknown = sorted(set(config) - set(valid))
    if unknown:
        raise WorkflowError(f"unknown workflow setting(s) {', '.join(unknown)}; valid: {', '.join(valid)} "
                            "(run settings such as lr=... belong in a profile, see aea/profiles/)")


def check_config_files():
    """Read every workflow config file (workflow/config/config.yaml, any --configfile) again with aea's YAML reader,
    which refuses a key given twice (Snakemake's loader keeps the last one without a word)."""
    for path in workflow.configfiles:
        try:
            read_yaml_file(Path(path), "fix the workflow config file")
        except AEAError as e:
            raise WorkflowError(str(e)) from None


def results_dir(profile, default):
    """Where a profile's tables go: results/ for the default profile, results/profiles/<name>/ for the others
    (not results/<name>/: results/paper/ holds the paper's reference values)."""
    return "results" if profile == default else f"results/profiles/{profile}"


def dataset_source(wildcards):
    """Generated profiles make the release first; real data is only checked."""
    if PROFILE.synthetic:
        return f"{DATA_ROOT}/.aea/{RELEASE[wildcards.dataset]}.{PROFILE.synthetic}.done"
    return []


def data_version(wildcards):
    """Real data: the signature of the dataset's listing (names, sizes, mtimes), so data replaced or edited in
    place reruns its check and every run on it. Generated data: none (its marker is the check's input; it does
    not exist yet when the first DAG is built). Data that cannot be read yet is left to the check to report."""
    if PROFILE.synthetic:
        return None
    from aea.data.datasets import data_signature  # h5py, scipy, PIL: only profiles on real data pay the import

    try:
        return data_signature(wildcards.dataset, DATA_ROOT)
    except AEAError:
        return "unreadable"


def run_dir(dataset, name, seed):
    return run_path(RUNS, dataset, name, seed)


def run_file(dataset, name, file):
    """A file of run ``name``'s folder as a rule's pattern, its seed the ``{seed}`` wildcard."""
    return os.path.join(run_dir(dataset, name, "{seed}"), file)


def run_seeds(run):
    """The seeds a run is trained with: the profile's ``seeds`` for a method's default run (Tables 2 and 6), its
    ``sweep_seeds`` for a run with overrides (the sweeps' points, the interpretations' other readings)."""
    return list(PROFILE.sweep_seeds if parse_run_name(run)[1] else PROFILE.seeds)


def job_seeds(wildcards):
    """The seeds one training job trains, in turn: all its run's when the profile groups them (``group_seeds``: one
    process start for all), else the job's own."""
    return run_seeds(wildcards.run) if PROFILE.group_seeds else [int(wildcards.seed)]


def per_seed(pattern, seeds):
    """A training rule's output pattern (``{seed}`` in it): one file per seed of ``seeds`` when the profile groups
    seeds (the job has no seed wildcard), else the pattern itself."""
    return expand(pattern, seed=seeds, allow_missing=True) if PROFILE.group_seeds else pattern


def job_log(name):
    """A training job's log: the run's own folder for a job of all its seeds, else the seed's folder."""
    return f"{RUNS}/{{dataset}}/{name}/" + ("job.log" if PROFILE.group_seeds else "seed{seed}/job.log")


def job_run_dir(wildcards, name):
    """Run ``name``'s folder as `aea train` takes it: with ``{seed}``, filled per seed, for a job of several."""
    return run_dir(wildcards.dataset, name, "{seed}" if PROFILE.group_seeds else wildcards.seed)


def other_runs(wildcards):
    """The names of the finished runs of the same dataset and seed a training takes as input, by `aea train` option
    (``aea.runs.run_inputs``)."""
    method, overrides = parse_run_name(wildcards.run)
    cfg = resolve(PROFILE, wildcards.dataset, method, overrides, job_seeds(wildcards)[0])
    return {key: run_name(*run) for key, run in run_inputs(cfg, overrides).items()}


def other_run_models(cfg, run_folder):
    """The model files of the runs a run of ``cfg`` (no overrides) takes as input, by `aea train` option
    (``aea.runs.run_inputs``); ``run_folder(method)``: that method's run folder of the same unit."""
    return {key: f"{run_folder(method)}/{MODEL_FILE}" for key, (method, _) in run_inputs(cfg, {}).items()}


def train_inputs(wildcards):
    inputs = {"data": f"{RUNS}/data/{wildcards.dataset}.json"}
    for key, name in other_runs(wildcards).items():
        inputs[key] = [os.path.join(run_dir(wildcards.dataset, name, seed), MODEL_FILE) for seed in job_seeds(wildcards)]
    return inputs


def reads_off_baseline1(dataset):
    """Whether the dataset's plain Baseline-1 run is AEA's basic network (share_basic, ``aea.runs.run_inputs``)."""
    cfg = resolve(PROFILE, dataset, "baseline1", {}, 0)
    return run_inputs(cfg, {}).get("basic_of", ("",))[0] == "aea"


def of_run(wildcards, run):
    """The wildcards of the `train` job of ``run`` at this job's dataset (and seed, when jobs have one)."""
    return SimpleNamespace(dataset=wildcards.dataset, run=run, seed=getattr(wildcards, "seed", None))


def train_args(wildcards):
    """`aea train` arguments after the common ones, one list item per word (the rule quotes each)."""
    method, overrides = parse_run_name(wildcards.run)
    args = ["--method", method] + [f"{k}={v}" for k, v in sorted(overrides.items())]
    for key, name in other_runs(wildcards).items():
        args += [f"--{key.replace('_', '-')}", job_run_dir(wildcards, name)]
    return args


def other_run_args(input):
    """`aea train`'s --baseline1 / --basic-of for the finished runs among a (one-seed) training job's inputs."""
    return [arg for key in ("baseline1", "basic_of") if key in input.keys()
            for arg in (f"--{key.replace('_', '-')}", os.path.dirname(input[key]))]


def run_config_hash(wildcards):
    """Hashes of the job's runs' fully resolved configs (profile values included), those `aea train` resolves: a
    param of the job, so Snakemake reruns a run whose config an edit changed, and only such runs."""
    method, overrides = parse_run_name(wildcards.run)
    hashes = [resolve(PROFILE, wildcards.dataset, method, overrides, seed).hash() for seed in job_seeds(wildcards)]
    return hashes if PROFILE.group_seeds else hashes[0]  # one job, one seed: the param as it always was


def table_inputs(name):
    spec = T.get_spec(name)
    datasets = [d for d in spec.datasets if d in PROFILE.datasets]
    values = {p: PROFILE.sweeps[p] for p in spec.params if p in PROFILE.sweeps}
    seeds = PROFILE.sweep_seeds if spec.params else PROFILE.seeds  # a sweep's points: every run has overrides
    return [str(p) for p in T.metrics_paths(name, RUNS_ROOT, PROFILE.name, seeds, datasets, values,
                                            canonical=PROFILE.canonical)]


def interpretation_inputs():
    """metrics.json of every run the interpretations table needs (aea.tables.interpretation_runs)."""
    runs = T.interpretation_runs([d for d in DATASETS if d in PROFILE.datasets])
    return [str(p) for p in T.runs_metrics_paths(runs, RUNS_ROOT, PROFILE.name, PROFILE.sweep_seeds,
                                                 canonical=PROFILE.canonical)]


def runs_stamp(name, table, metrics):
    """An input of the job of table ``name`` beside its runs' metrics.json: ``results/runs/<profile>/.tables/<name>``.
    Snakemake never looks at the inputs of an up-to-date output again, so a deleted metrics.json under an existing
    ``table`` reran nothing; then this file is rewritten (new content, newer than the table), which remakes the
    table and, as its missing input, the run. Otherwise it is left alone (created empty and old: nothing reruns)."""
    stamp = f"{RUNS}/.tables/{name}"
    missing = [path for path in metrics if not os.path.exists(path)]
    if missing and os.path.exists(table):
        os.makedirs(os.path.dirname(stamp), exist_ok=True)
        with open(stamp, "w") as handle:
            handle.write(f"{time.time_ns()}: remake {table}, its run(s) {', '.join(missing)} are missing\n")
    elif not os.path.exists(stamp):
        os.makedirs(os.path.dirname(stamp), exist_ok=True)
        open(stamp, "w").close()
        os.utime(stamp, ns=(0, 0))  # older than any table: a new stamp reruns nothing
    return stamp


def table_files(name, out):
    """What `aea table NAME --out-dir OUT` writes (aea.tables.table_files), as the strings Snakemake matches."""
    return [str(path) for path in T.table_files(name, out)]


def page_inputs(wildcards):
    """What a table's report page shows: the table, its diff and claims, its figure if it has one."""
    csv, _, _, _, diff_md, *figure = table_files(wildcards.table, OUT)
    return {"table": csv, "diff": diff_md, **({"figure": figure[0]} if figure else {})}


def table_outputs(name):
    """table_files, those people read marked for `snakemake --report` (the table, its diff and claims, figure)."""
    csv, provenance, claims, diff_csv, diff_md, *figure = table_files(name, OUT)

    def shown(path, what):
        return report(path, caption="../report/table_file.rst", category="Tables", subcategory=name,
                      labels={"table": name, "file": what})

    return [shown(csv, "every cell (csv)"), provenance, claims, diff_csv, shown(diff_md, "diff and claims (markdown)")] + [
        shown(path, "figure") for path in figure]
