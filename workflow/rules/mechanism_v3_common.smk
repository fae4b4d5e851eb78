# Settings and helpers of workflow/rules/mechanism_v3.smk (kept apart from the rules, as mechanism_common.smk
# is): the version-3 profile, where its data and runs live, and what its table reads (docs/mechanism.md).

MECH3_PROFILE = load_profile("mechanism-v3-tiny" if PROFILE.name == "tiny" else "mechanism-v3")
MECH3_RUNS = profile_runs(MECH3_PROFILE.name)
MECH3_DATA = str(data_root(os.path.dirname(MECH3_PROFILE.defaults["data_root"]))
                 / os.path.basename(MECH3_PROFILE.defaults["data_root"]))
MECH3_OUT = f"{OUT}/mechanism-v3"
# generator seeds (the top unit): 10 registered; the tiny workflow test runs 2, the fewest with an interval
MECH3_GENERATOR_SEEDS = (0, 1) if MECH3_PROFILE.name.endswith("-tiny") else tuple(range(10))
# test set -> (occlusion p, occluded region) of its data root
MECH3_SETS = {"p0": (0.0, "upper"), "upper-p0.2": (0.2, "upper"), "upper-p0.4": (0.4, "upper"),
              "any-p1": (1.0, "any")}
MECH3_RETESTS = tuple(s for s in MECH3_SETS if s != "p0")
MECH3_METHODS = ("baseline1", "aea", "noerase", "randbudget")
MECH3_WILDCARDS = {"gen": r"\d+", "seed": r"\d+", "method": "|".join(MECH3_METHODS)}


def mechanism3_root(test_set, gen):
    return f"{MECH3_DATA}/{test_set}-g{gen}"


def mechanism3_done(gen):
    return f"{MECH3_DATA}/.aea/g{gen}.{MECH3_PROFILE.synthetic}.done"


def mechanism3_run(gen, method, seed):
    return f"{MECH3_RUNS}/redundant-g{gen}/{method}/seed{seed}"


def mechanism3_metrics(gen, method, seed, test_set):
    return f"{mechanism3_run(gen, method, seed)}/{METRICS_FILE if test_set == 'p0' else f'metrics-{test_set}.json'}"


def mechanism3_inputs():
    """Every metrics file of the v3 table: each method of each unit on each test set."""
    return [mechanism3_metrics(gen, method, seed, test_set) for gen in MECH3_GENERATOR_SEEDS
            for method in MECH3_METHODS for seed in MECH3_PROFILE.seeds for test_set in MECH3_SETS]


def mechanism3_config(wildcards):
    return resolve(MECH3_PROFILE, "market1501", wildcards.method, {"data_root": mechanism3_root("p0", wildcards.gen)},
                   int(wildcards.seed))


def mechanism3_train_inputs(wildcards):
    """The unit's data, and the runs a run takes its basic network from (``aea.runs.run_inputs``, as mechanism.smk)."""
    runs = other_run_models(mechanism3_config(wildcards),
                            lambda method: mechanism3_run(wildcards.gen, method, wildcards.seed))
    return {"data": mechanism3_done(wildcards.gen), **runs}
