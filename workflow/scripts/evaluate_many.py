"""`aea evaluate` of one run on several test sets in one Python process (workflow/rules/mechanism.smk): each
`aea` process spends seconds importing torch, so a redundant mechanism run's p = 0.2 and p = 0.4 test sets
are evaluated by one job instead of one process each (version 3, workflow/rules/mechanism_v3.smk: a unit's four
runs on three test sets each). The metrics files are those `aea evaluate --run RUN --data-root ROOT --out FILE`
writes, byte for byte the same command run in turn.

Snakemake passes: input.model (the run's model.pt) or params.runs (one run folder per root), params.roots
(data roots, in the order of output), output (one metrics file per root), threads, log. On an error the log's
last line (`aea: error: ...`) is repeated on stderr, as the workflow's shell rules do.

No `from __future__` import: Snakemake puts its preamble above this file."""

import logging
import os
import sys
from contextlib import redirect_stderr, redirect_stdout

from aea.cli import main


def evaluate_many(run: str | list[str], roots: list[str], outs: list[str], threads: int, log: str) -> int:
    """Run ``aea evaluate --run run --data-root root --out out`` for each pair in turn (``run``: one run for all,
    or one per root); the first non-zero exit code stops it and is returned. Everything the commands print goes
    to ``log``."""
    if len(roots) != len(outs):
        raise ValueError(f"{len(roots)} data roots for {len(outs)} metrics files")
    runs = [run] * len(roots) if isinstance(run, str) else list(run)
    if len(runs) != len(roots):
        raise ValueError(f"{len(runs)} runs for {len(roots)} data roots")
    root_logger = logging.getLogger()
    with open(log, "w") as stream, redirect_stdout(stream), redirect_stderr(stream):
        # main's logging.basicConfig does nothing where the root logger has a handler already (Snakemake's, pytest's)
        handler = logging.StreamHandler(stream)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S"))
        root_logger.addHandler(handler)
        level = root_logger.level
        root_logger.setLevel(logging.INFO)
        try:
            for run, root, out in zip(runs, roots, outs):
                code = main(["evaluate", "--run", run, "--data-root", root, "--out", out, "--threads", str(threads)])
                if code:
                    return code
        finally:
            root_logger.removeHandler(handler)
            root_logger.setLevel(level)
    return 0


def run_job(smk) -> None:
    """The job: evaluate the run of ``input.model`` (or each of ``params.runs``, one per root) on ``params.roots``;
    on failure exit 1 with the log's last line."""
    run = list(smk.params.runs) if "runs" in smk.params.keys() else os.path.dirname(smk.input.model)
    code = evaluate_many(run, list(smk.params.roots), list(smk.output), smk.threads, smk.log[0])
    if code:
        with open(smk.log[0]) as stream:
            lines = stream.read().splitlines()
        print(lines[-1] if lines else f"aea evaluate exited with {code}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    run_job(snakemake)  # noqa: F821  (the object Snakemake's script directive provides)
