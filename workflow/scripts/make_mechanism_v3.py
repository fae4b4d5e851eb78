"""One generator seed's version-3 data roots in one Python process (workflow/rules/mechanism_v3.smk): the same
``aea.data.bodyparts.make_mechanism(root, version=3, ...)`` for each (occlusion p, occluded region), then the
job's done stamp.

Snakemake passes: params.roots (data roots), params.sets ((p, region) per root), params.size, wildcards.gen,
output (the stamp), log. On an error the log's last line is repeated on stderr, as the workflow's shell rules do.

No `from __future__` import: Snakemake puts its preamble above this file."""

import logging
import sys
from pathlib import Path


def make_roots(roots: list[str], sets: list, size: str, seed: int, log: str) -> None:
    from aea.data.bodyparts import make_mechanism

    logging.basicConfig(filename=log, level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        force=True)
    for root, (p, region) in zip(roots, sets):
        path = make_mechanism(root, variant="redundant", occlusion=float(p), size=size, seed=seed, version=3,
                              occluded_region=region)
        logging.info("wrote version-3 data (p=%g, occluded region %s, seed %d) to %s", p, region, seed, path)


def run_job(smk) -> None:
    try:
        make_roots(list(smk.params.roots), list(smk.params.sets), smk.params.size, int(smk.wildcards.gen), smk.log[0])
    except Exception as error:  # one line, as `aea` prints it
        with open(smk.log[0], "a") as stream:
            print(f"aea: error: {error}", file=stream)
        print(f"aea: error: {error}", file=sys.stderr)
        sys.exit(1)
    Path(smk.output[0]).touch()


if __name__ == "__main__":
    run_job(snakemake)  # noqa: F821  (the object Snakemake's script directive provides)
