# Settings and helpers of workflow/rules/mechanism.smk (kept apart from the rules, as rules/common.smk is):
# the mechanism profile, where its data and runs live, and what the table reads (docs/mechanism.md).

MECH_PROFILE = load_profile("mechanism-tiny" if PROFILE.name == "tiny" else "mechanism")
MECH_RUNS = profile_runs(MECH_PROFILE.name)
# the profile's data root (data/mechanism), its parent replaced by $AEA_DATA when set (aea.config.data_root)
MECH_DATA = str(data_root(os.path.dirname(MECH_PROFILE.defaults["data_root"]))
                / os.path.basename(MECH_PROFILE.defaults["data_root"]))
MECH_GENERATOR_SEEDS = (0, 1)
MECH_OCCLUSION = ("0", "0.2", "0.4")  # as they appear in paths
MECH_METHODS = {"redundant": ("baseline1", "aea", "baseline2", "noerase", "randbudget"),
                "single-cue": ("baseline1", "aea", "baseline2")}
MECH_TESTED_AT = {"redundant": MECH_OCCLUSION, "single-cue": ("0",)}
# variants whose runs are evaluated beyond p = 0 (at every p of MECH_OCCLUSION, by one job each)
MECH_RETESTED = tuple(v for v, ps in MECH_TESTED_AT.items() if ps == MECH_OCCLUSION)


def mechanism_root(variant, p, gen):
    return f"{MECH_DATA}/{variant}-p{p}-g{gen}"


def mechanism_run(variant, gen, method, seed):
    return f"{MECH_RUNS}/{variant}-g{gen}/{method}/seed{seed}"


def mechanism_metrics(variant, gen, method, seed, p):
    name = METRICS_FILE if p == "0" else f"metrics-p{p}.json"
    return f"{mechanism_run(variant, gen, method, seed)}/{name}"


def mechanism_inputs():
    """Every metrics file the mechanism table reads: each run of the design at each p it is tested at."""
    return [mechanism_metrics(variant, gen, method, seed, p)
            for variant, methods in MECH_METHODS.items() for gen in MECH_GENERATOR_SEEDS for method in methods
            for seed in MECH_PROFILE.seeds for p in MECH_TESTED_AT[variant]]


def mechanism_train_inputs(wildcards):
    """The run's data, and the Baseline-1 run of the same unit for a run that takes its basic network from it."""
    runs = other_run_models(mechanism_config(wildcards),
                            lambda method: mechanism_run(wildcards.variant, wildcards.gen, method, wildcards.seed))
    return {"data": f"{MECH_DATA}/.aea/{wildcards.variant}-p0-g{wildcards.gen}.{MECH_PROFILE.synthetic}.done", **runs}


def mechanism_config(wildcards):
    """The run's resolved config (its data root is its variant's and generator seed's, at p = 0)."""
    root = mechanism_root(wildcards.variant, "0", wildcards.gen)
    return resolve(MECH_PROFILE, "market1501", wildcards.method, {"data_root": root}, int(wildcards.seed))


def mechanism_config_hash(wildcards):
    """The run's resolved config hash: an edited mechanism profile reruns the runs it changes (as runs.smk)."""
    return mechanism_config(wildcards).hash()


# per rule, so the other rule files' wildcards stay as they are
MECH_WILDCARDS = {"variant": "|".join(MECH_METHODS), "gen": r"\d+", "p": r"0|0\.[0-9]+",
                  "method": "|".join(sorted({m for ms in MECH_METHODS.values() for m in ms}))}
