# AEA reproduction workflow: every table of the paper regenerated and diffed against it.
#
#   snakemake --cores all results/table2.csv                    # smoke profile (default): generated data, CPU
#   snakemake --cores all results/all --config profile=tiny     # every table, smallest scale
#   snakemake --workflow-profile workflow/profiles/slurm results/all   # paper profile on a SLURM cluster
#
# Runs live in results/runs/<profile>/<dataset>/<run name>/seed<k>/ and are cached per
# (profile, dataset, method, overrides, seed): another profile never overwrites them, and a changed
# parameter makes a new run name, so only what depends on it is trained.

import os

from aea.config import load_profile

PROFILE_ARG = config.get("profile", "smoke")  # a profile name or a YAML path
PROFILE = load_profile(PROFILE_ARG)
RUNS = f"results/runs/{PROFILE.name}"
PAPER_DIR = os.path.join(workflow.basedir, "results", "paper")  # reference values ship with the code

wildcard_constraints:
    dataset="market1501|cuhk03-labeled|cuhk03-detected|dukemtmcreid",
    seed=r"\d+",
    run=r"[a-z0-9]+(-[a-z0-9_.]+)*",

include: "workflow/rules/data.smk"
include: "workflow/rules/runs.smk"
include: "workflow/rules/tables.smk"
