"""Wall and CPU time of a command, appended as one CSV row: measured figures written by code, not typed into docs.

    python -m aea.timing --name main-job --out benchmarks/cpu-amd-epyc/timings.csv -- \
        snakemake --cores all results/table2.csv
    python -m aea.timing render --update docs/timings.md      # the table in docs/timings.md, from every timings.csv

``run`` (the default) runs the command after ``--``, waits for it, and appends one row (``COLUMNS``): the name, the
command, its exit status, wall seconds, user and system CPU seconds of the command and every process it waited for
(``getrusage(RUSAGE_CHILDREN)``), the largest of those processes' peak resident memory, the 1-minute load average
at the start and at the end, the CPUs this process may use, the UTC start time, and the git commit and the machine
(``aea.evaluate.git_commit``, ``aea.machine.machine_record``), read once the command has ended so that torch is
neither loaded beside it nor counted in its peak memory.

The row is appended atomically: the file is rewritten through ``aea.io.write_text`` under a lock on its folder, so
a reader never sees half a row and two timings ending together both land. The header is written once, with the
first row; a file with other columns is refused before the command runs. The command's exit status is this
process's (128 + N when signal N killed it; 127 when it cannot be found), so a timed ``pytest`` or ``snakemake``
fails a script as it would untimed. Ctrl-C reaches the command (this process waits for it and records the row);
SIGTERM is passed on to it.

``render`` prints the rows of the given CSVs (default: ``benchmarks/*/timings.csv``) as one Markdown table, or with
``--update PAGE`` rewrites the part of PAGE between ``BEGIN`` and ``END`` (tests/test_timing.py checks
docs/timings.md is current).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import datetime
import fcntl
import io
import os
import resource
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from aea.io import write_text

COLUMNS = ("date", "name", "command", "exit_code", "wall_s", "user_s", "sys_s", "max_rss_mib", "load_1m_start",
           "load_1m_end", "cpus", "commit", "cpu_model", "cpu_capability", "torch", "numpy", "gpu", "note")
DEFAULT_GLOB = "benchmarks/*/timings.csv"
BEGIN = "<!-- rendered by `python -m aea.timing render --update docs/timings.md`: do not edit by hand -->"
END = "<!-- end of the rendered table -->"


class TimingError(Exception):
    """A timing that cannot be recorded (the CSV has other columns, the command cannot be started); ``status`` is
    the exit status to end with (127 / 126 for a command not found / not executable, as a shell's)."""

    def __init__(self, message: str, status: int = 2) -> None:
        super().__init__(message)
        self.status = status


# ------------------------------------------------------------------------------------------------ the CSV
def check_header(path: Path) -> None:
    """Refuse a ``path`` that exists with other columns than ``COLUMNS`` (an empty file is fine)."""
    if not path.is_file() or path.stat().st_size == 0:
        return
    with open(path, newline="") as fh:
        header = next(csv.reader(fh), [])
    if tuple(header) != COLUMNS:
        raise TimingError(f"{path} has the columns {header}, not a timings file's ({', '.join(COLUMNS)}); "
                          f"choose another --out")


@contextlib.contextmanager
def folder_lock(folder: Path) -> Iterator[None]:
    """An exclusive ``flock`` on ``folder`` itself (no lock file left behind), held for the block."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def append_row(path: str | os.PathLike, row: dict[str, Any]) -> Path:
    """Append ``row`` (keys from ``COLUMNS``) to the CSV ``path``: header once, the whole file replaced atomically."""
    path = Path(path)
    unknown = sorted(set(row) - set(COLUMNS))
    if unknown:
        raise ValueError(f"unknown timing columns {unknown}; use {COLUMNS}")
    path.parent.mkdir(parents=True, exist_ok=True)
    with folder_lock(path.parent):
        check_header(path)
        old = path.read_text() if path.is_file() else ""
        if old and not old.endswith("\n"):
            old += "\n"
        line = io.StringIO()
        writer = csv.DictWriter(line, fieldnames=COLUMNS, lineterminator="\n")
        if not old:
            writer.writeheader()
        writer.writerow({column: row.get(column, "") for column in COLUMNS})
        write_text(path, old + line.getvalue())
    return path


def read_rows(paths: Sequence[str | os.PathLike]) -> list[dict[str, str]]:
    """The rows of the timings CSVs ``paths``, each with ``file`` added, in file order then row order."""
    rows = []
    for path in paths:
        check_header(Path(path))
        with open(path, newline="") as fh:
            rows += [{**row, "file": Path(path).as_posix()} for row in csv.DictReader(fh)]
    return rows


# ------------------------------------------------------------------------------------------------ measuring
def machine() -> dict[str, str]:
    """The machine columns (``aea.machine.machine_record``), read after the command (see the module's docstring).
    Without torch: the CPU model alone."""
    from aea.machine import cpu_model, machine_record

    try:
        import torch
    except ImportError:
        return {"cpu_model": cpu_model()}
    record = machine_record("cuda" if torch.cuda.is_available() else "cpu")
    return {key: str(record[key]) for key in ("cpu_model", "cpu_capability", "torch", "numpy", "gpu")}


def commit() -> str:
    from aea.evaluate import git_commit

    return git_commit(Path.cwd())


def _seconds(value: float) -> str:
    return f"{value:.3f}"


def run(name: str, command: Sequence[str], out: str | os.PathLike, note: str = "") -> int:
    """Run ``command``, append its row to ``out``, return its exit status (128 + N for a kill by signal N)."""
    if not command:
        raise TimingError("no command to time: give it after `--`")
    out = Path(out)
    check_header(out)  # before the command: a long run's figure is not lost to a wrong --out
    started_at = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    load_start = os.getloadavg()[0]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    try:
        child = subprocess.Popen(list(command))
    except OSError as e:
        status = 127 if isinstance(e, FileNotFoundError) else 126
        raise TimingError(f"cannot run {shlex.join(command)}: {e.strerror}", status) from None
    # Ctrl-C goes to the whole foreground group: the command decides what to do with it, this process waits for it
    # and records what happened. SIGTERM (a timeout, a job scheduler) is passed on.
    old_int = signal.signal(signal.SIGINT, signal.SIG_IGN)
    old_term = signal.signal(signal.SIGTERM, lambda signum, frame: child.send_signal(signum))
    try:
        status = child.wait()
    finally:
        signal.signal(signal.SIGINT, old_int)
        signal.signal(signal.SIGTERM, old_term)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    load_end = os.getloadavg()[0]
    exit_code = 128 - status if status < 0 else status
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    row = {"date": started_at, "name": name, "command": shlex.join(command), "exit_code": exit_code,
                     "wall_s": _seconds(wall), "user_s": _seconds(after.ru_utime - before.ru_utime),
                     "sys_s": _seconds(after.ru_stime - before.ru_stime),
                     "max_rss_mib": f"{after.ru_maxrss / 1024:.1f}",  # kB on Linux; the largest waited-for process
                     "load_1m_start": f"{load_start:.2f}", "load_1m_end": f"{load_end:.2f}", "cpus": cpus,
                     "commit": commit(), **machine(), "note": note}
    try:
        append_row(out, row)
    except (OSError, TimingError) as e:  # the command ran: its own failure status comes first
        print(f"aea.timing: error: the row of {name!r} was not written: {e}", file=sys.stderr)
        return exit_code or 2
    return exit_code


# ------------------------------------------------------------------------------------------------ rendering
def duration(seconds: float) -> str:
    """``0.083 s``, ``14.2 s``, ``9 min 32 s``, ``1 h 02 min``."""
    if seconds < 10:
        return f"{seconds:.3g} s"
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min {round(seconds % 60):d} s"
    return f"{int(seconds // 3600)} h {round(seconds % 3600 / 60):02d} min"


def render(rows: Sequence[dict[str, str]], base: str | os.PathLike = ".") -> str:
    """The rows as Markdown: per CSV file, its link (relative to ``base``) and a table of its rows in order."""
    blocks = []
    for file in dict.fromkeys(row["file"] for row in rows):
        link = Path(os.path.relpath(file, base)).as_posix()
        shown = "/".join(Path(file).parts[-3:])  # benchmarks/<device>/<name>.csv, wherever the checkout is
        lines = [f"[{shown}]({link}):", "",
                 "| name | command | wall | CPU (user + sys) | exit | load at start / end | CPUs | machine | commit | "
                 "date (UTC) |", "|" + "---|" * 10]
        for row in (row for row in rows if row["file"] == file):
            cpu = float(row["user_s"] or 0) + float(row["sys_s"] or 0)
            machine = (row["cpu_model"] + (f" ({row['cpu_capability']})" if row.get("cpu_capability") else "")
                       + (f", GPU {row['gpu']}" if row.get("gpu") else ""))
            command = row["command"].replace("|", "\\|")
            note = f" ({row['note']})" if row.get("note") else ""
            commit = row["commit"][:7] + ("-dirty" if row["commit"].endswith("-dirty") else "")
            lines.append(f"| {row['name']}{note} | `{command}` | {duration(float(row['wall_s']))} | {duration(cpu)} | "
                         f"{row['exit_code']} | {row['load_1m_start']} / {row['load_1m_end']} | {row['cpus']} | "
                         f"{machine} | {commit} | {row['date']} |")
        blocks.append("\n".join(lines) + "\n")
    return "\n".join(blocks)


def update_page(page: str | os.PathLike, table: str) -> bool:
    """Put ``table`` between ``BEGIN`` and ``END`` in ``page``; True when the page changed."""
    page = Path(page)
    text = page.read_text()
    if BEGIN not in text or END not in text:
        raise TimingError(f"{page} has no rendered section: add the two lines\n{BEGIN}\n{END}")
    head, rest = text.split(BEGIN, 1)
    new = f"{head}{BEGIN}\n{table}{END}{rest.split(END, 1)[1]}"
    if new == text:
        return False
    write_text(page, new)
    return True


def rendered_section(page: str | os.PathLike) -> str:
    """What lies between ``BEGIN`` and ``END`` in ``page`` (the table as last rendered)."""
    text = Path(page).read_text()
    return text.split(BEGIN, 1)[1].split(END, 1)[0].removeprefix("\n")


def default_files(root: str | os.PathLike = ".") -> list[Path]:
    return sorted(Path(root).glob(DEFAULT_GLOB))


# ------------------------------------------------------------------------------------------------ command line
def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv[:1] == ["render"]:
            parser = argparse.ArgumentParser(prog="python -m aea.timing render",
                                             description="Timings CSVs as one Markdown table.")
            parser.add_argument("files", nargs="*", help=f"timings CSVs (default: {DEFAULT_GLOB})")
            parser.add_argument("--update", metavar="PAGE", help="rewrite PAGE's rendered section instead of printing")
            args = parser.parse_args(argv[1:])
            rows = read_rows(args.files or [p.as_posix() for p in default_files()])
            table = render(rows, Path(args.update).parent if args.update else ".")
            if args.update:
                changed = update_page(args.update, table)
                print(f"{args.update}: {'updated' if changed else 'already current'}")
            else:
                sys.stdout.write(table)
            return 0
        command = argv[argv.index("--") + 1:] if "--" in argv else []
        options = argv[:argv.index("--")] if "--" in argv else argv
        parser = argparse.ArgumentParser(
            prog="python -m aea.timing", usage="%(prog)s --name NAME --out CSV [--note TEXT] -- COMMAND ...",
            description="Run COMMAND, append its wall and CPU time (and the machine) to CSV as one row; exit with "
                        "COMMAND's status. `python -m aea.timing render` prints the CSVs as a table.")
        parser.add_argument("--name", required=True, help="what was measured, e.g. main-job")
        parser.add_argument("--out", required=True, help="the CSV, e.g. benchmarks/cpu-amd-epyc/timings.csv")
        parser.add_argument("--note", default="", help="anything the figure needs beside it (idle machine, ...)")
        args = parser.parse_args(options)
        if not command:
            parser.error("give the command after `--`")
        return run(args.name, command, args.out, args.note)
    except TimingError as e:
        print(f"aea.timing: error: {e}", file=sys.stderr)
        return e.status
    except OSError as e:
        print(f"aea.timing: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
