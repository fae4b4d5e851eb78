# One job per (dataset, run name, seed): training, then evaluation into metrics.json. The run name encodes the method and
# its overrides (aea.config.run_name), so any run can also be asked for by path, e.g.
#   snakemake --cores all results/runs/smoke/market1501/aea-erase_ratio_15/seed0/metrics.json

from aea.config import parse_run_name, run_name
from aea.methods import get_method

# Keys that change only the erasing or the complementary network: a Baseline-1 input ignores them.
NOT_BASELINE1 = ("alpha1", "erase_ratio", "erase_layer", "erase_fill", "erase_backend")
TRAIN_THREADS = int(config.get("train_threads", 1))
GPUS = int(config.get("gpus_per_run", 0))


def run_dir(dataset, name, seed):
    return f"{RUNS}/{dataset}/{name}/seed{seed}"


def baseline1_name(name):
    method, overrides = parse_run_name(name)
    return run_name("baseline1", {k: v for k, v in overrides.items() if k not in NOT_BASELINE1})


def train_inputs(wildcards):
    inputs = {"data": f"{RUNS}/data/{wildcards.dataset}.json"}
    method, _ = parse_run_name(wildcards.run)
    if get_method(method).needs_baseline1:
        inputs["baseline1"] = run_dir(wildcards.dataset, baseline1_name(wildcards.run), wildcards.seed) + "/model.pt"
    return inputs


def train_args(wildcards, input):
    method, overrides = parse_run_name(wildcards.run)
    args = [f"--method {method}"] + [f"{k}={v}" for k, v in sorted(overrides.items())]
    if "baseline1" in input.keys():
        args.append(f"--baseline1 {os.path.dirname(input.baseline1)}")
    return " ".join(args)


rule train:
    input:
        unpack(train_inputs),
    output:
        model=f"{RUNS}/{{dataset}}/{{run}}/seed{{seed}}/model.pt",
        metrics=f"{RUNS}/{{dataset}}/{{run}}/seed{{seed}}/metrics.json",
    log:
        f"{RUNS}/{{dataset}}/{{run}}/seed{{seed}}/train.log",
    params:
        args=train_args,
        out=lambda w: run_dir(w.dataset, w.run, w.seed),
    threads: TRAIN_THREADS
    resources:
        gpu=GPUS,
    shell:
        "aea train --profile {PROFILE_ARG} --dataset {wildcards.dataset} --seed {wildcards.seed} --evaluate"
        " --out {params.out} --threads {threads} {params.args} > {log} 2>&1 || (tail -n 1 {log} >&2; exit 1)"
