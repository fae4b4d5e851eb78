"""aea.timing: a timed command's row (fields, header once, atomic append, exit status kept) and the rendered table."""

from __future__ import annotations

import csv
import datetime
import re
import subprocess
import sys
from pathlib import Path

import pytest

from aea import timing
from aea.machine import cpu_model

REPO = Path(__file__).resolve().parent.parent
PY = sys.executable
BURN = "import time\nend = time.process_time() + {cpu}\nwhile time.process_time() < end: pass\ntime.sleep({sleep})"


def rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_a_row_holds_the_command_its_times_and_the_machine(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)  # the commit is the checkout's
    out = tmp_path / "dev" / "timings.csv"
    command = [PY, "-c", BURN.format(cpu=0.3, sleep=0.3), "two words"]
    assert timing.main(["--name", "burn", "--out", str(out), "--note", "idle", "--", *command]) == 0
    [row] = rows(out)
    assert tuple(row) == timing.COLUMNS
    assert row["name"] == "burn" and row["note"] == "idle" and row["exit_code"] == "0"
    assert row["command"].endswith("'two words'") and row["command"].startswith(PY)  # shell-quoted, copy-pastable
    assert 0.6 <= float(row["wall_s"]) < 30
    assert 0.25 <= float(row["user_s"]) + float(row["sys_s"]) <= float(row["wall_s"]) + 1
    assert float(row["max_rss_mib"]) > 0 and float(row["load_1m_start"]) >= 0 and float(row["load_1m_end"]) >= 0
    assert int(row["cpus"]) >= 1
    started = datetime.datetime.strptime(row["date"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.UTC)
    assert abs((datetime.datetime.now(datetime.UTC) - started).total_seconds()) < 120
    head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=REPO).stdout.strip()
    assert re.fullmatch(re.escape(head) + "(-dirty)?", row["commit"])
    assert row["cpu_model"] == cpu_model() and row["torch"] and row["numpy"]


def test_cpu_time_of_processes_the_command_starts_is_counted(tmp_path):
    """snakemake and pytest do their work in child processes: a shell's child's CPU time belongs to the row."""
    out = tmp_path / "t.csv"
    script = f"{PY} -c '{BURN.format(cpu=0.4, sleep=0)}'"
    assert timing.main(["--name", "sh", "--out", str(out), "--", "sh", "-c", script]) == 0
    assert float(rows(out)[0]["user_s"]) + float(rows(out)[0]["sys_s"]) >= 0.35


def test_header_is_written_once_and_rows_append_in_order(tmp_path):
    out = tmp_path / "t.csv"
    for name in ("one", "two", "three"):
        assert timing.main(["--name", name, "--out", str(out), "--", "true"]) == 0
    lines = out.read_text().splitlines()
    assert lines[0] == ",".join(timing.COLUMNS) and sum(line.startswith("date,") for line in lines) == 1
    assert [row["name"] for row in rows(out)] == ["one", "two", "three"]


def test_exit_status_is_recorded_and_propagated(tmp_path):
    out = tmp_path / "t.csv"
    assert timing.main(["--name", "fails", "--out", str(out), "--", PY, "-c", "raise SystemExit(3)"]) == 3
    assert timing.main(["--name", "killed", "--out", str(out), "--", "sh", "-c", "kill -TERM $$"]) == 128 + 15
    assert [row["exit_code"] for row in rows(out)] == ["3", "143"]
    # as a process, the way a script or CI runs it: its own exit status is the command's
    done = subprocess.run([PY, "-m", "aea.timing", "--name", "cli", "--out", str(out), "--", PY, "-c",
                           "import sys; print('out'); sys.exit(5)"], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 5 and done.stdout == "out\n"  # the command's output passes through untouched
    assert rows(out)[-1]["exit_code"] == "5"


def test_arguments_after_the_separator_are_the_commands_own(tmp_path):
    """`snakemake --cores all -- TARGET` and `pytest -m 'not slurm'` keep their own `--` and options."""
    out = tmp_path / "t.csv"
    echo = [PY, "-c", "import sys; sys.exit(0 if sys.argv[1:] == ['--name', 'x', '--', 'y'] else 9)"]
    assert timing.main(["--name", "sep", "--out", str(out), "--", *echo, "--name", "x", "--", "y"]) == 0


def test_a_command_that_cannot_start_writes_no_row(tmp_path, capsys):
    out = tmp_path / "t.csv"
    assert timing.main(["--name", "nothing", "--out", str(out), "--", str(tmp_path / "no-such-command")]) == 127
    assert "cannot run" in capsys.readouterr().err and not out.exists()
    with pytest.raises(SystemExit):  # no command at all: a usage error
        timing.main(["--name", "nothing", "--out", str(out)])


def test_a_file_with_other_columns_is_refused_before_the_command_runs(tmp_path, capsys):
    out = tmp_path / "loader.csv"
    out.write_text("date,device,value\n2026-01-01,cpu,1\n")
    marker = tmp_path / "ran"
    assert timing.main(["--name", "x", "--out", str(out), "--", "touch", str(marker)]) == 2
    assert not marker.exists() and out.read_text() == "date,device,value\n2026-01-01,cpu,1\n"
    assert "choose another --out" in capsys.readouterr().err


def test_a_failed_write_leaves_the_file_as_it_was(tmp_path, monkeypatch):
    out = tmp_path / "t.csv"
    timing.append_row(out, {"name": "kept", "wall_s": "1"})
    before = out.read_bytes()

    def full_disk(self, text):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "write_text", full_disk)
    with pytest.raises(OSError):
        timing.append_row(out, {"name": "lost", "wall_s": "2"})
    monkeypatch.undo()
    assert out.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["t.csv"]  # no temp file left


def test_a_failed_write_after_the_command_keeps_its_failure_status(tmp_path, monkeypatch, capsys):
    def fail(path, row):
        raise OSError(30, "Read-only file system", str(path))

    monkeypatch.setattr(timing, "append_row", fail)
    assert timing.main(["--name", "x", "--out", str(tmp_path / "t.csv"), "--", "sh", "-c", "exit 4"]) == 4
    assert timing.main(["--name", "x", "--out", str(tmp_path / "t.csv"), "--", "true"]) == 2
    assert "was not written" in capsys.readouterr().err


APPEND_MANY = """import sys
from aea.timing import append_row
for i in range(10):
    append_row(sys.argv[1], {"name": f"w{sys.argv[2]}-{i}", "wall_s": str(i)})
"""


def test_concurrent_appends_all_land_whole(tmp_path):
    out = tmp_path / "t.csv"
    workers = [subprocess.Popen([PY, "-c", APPEND_MANY, str(out), str(w)]) for w in range(6)]
    assert [worker.wait(60) for worker in workers] == [0] * 6
    names = [row["name"] for row in rows(out)]
    assert sorted(names) == sorted(f"w{w}-{i}" for w in range(6) for i in range(10))
    assert out.read_text().count("date,name,") == 1
    assert [p.name for p in tmp_path.iterdir()] == ["t.csv"]  # no lock file, no temp file


def test_render_shows_every_row_and_links_its_file(tmp_path):
    out = tmp_path / "benchmarks" / "cpu-x" / "timings.csv"
    timing.append_row(out, {"date": "2026-01-01T00:00:00Z", "name": "main-job", "command": "snakemake --cores all",
                            "exit_code": 0, "wall_s": "572.4", "user_s": "1000", "sys_s": "96", "cpus": 2,
                            "load_1m_start": "0.10", "load_1m_end": "1.90", "commit": "430f141abc-dirty",
                            "cpu_model": "AMD EPYC", "cpu_capability": "AVX512", "note": "idle"})
    timing.append_row(out, {"name": "pipe", "command": "sh -c 'a | b'", "wall_s": "0.0834", "user_s": "0.01",
                            "sys_s": "0", "commit": "unknown", "cpu_model": "AMD EPYC"})
    table = timing.render(timing.read_rows([out]), base=tmp_path / "docs")
    lines = table.splitlines()
    assert lines[0] == "[benchmarks/cpu-x/timings.csv](../benchmarks/cpu-x/timings.csv):"
    for cell in ("main-job (idle)", "`snakemake --cores all`", "9 min 32 s", "18 min 16 s", "0.10 / 1.90",
                 "AMD EPYC (AVX512)", "430f141-dirty", "2026-01-01T00:00:00Z"):
        assert cell in lines[4], cell
    assert "`sh -c 'a \\| b'` | 0.0834 s | 0.01 s |" in lines[5]  # a pipe in a command does not split the cell
    assert len(lines) == 6
    assert [timing.duration(s) for s in (0.0834, 14.24, 59.96, 3725)] == ["0.0834 s", "14.2 s", "60.0 s", "1 h 02 min"]


def test_update_rewrites_only_the_rendered_section(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(f"# Title\n\nbefore\n{timing.BEGIN}\nold table\n{timing.END}\nafter\n")
    assert timing.update_page(page, "| new |\n") is True
    assert page.read_text() == f"# Title\n\nbefore\n{timing.BEGIN}\n| new |\n{timing.END}\nafter\n"
    assert timing.update_page(page, "| new |\n") is False
    assert timing.rendered_section(page) == "| new |\n"


def test_docs_timings_page_is_rendered_from_the_committed_csvs():
    """docs/timings.md shows what benchmarks/*/timings.csv hold; after a new row, re-render the page."""
    files = timing.default_files(REPO)
    assert files, "no benchmarks/*/timings.csv"
    expected = timing.render(timing.read_rows(files), base=REPO / "docs")
    assert timing.rendered_section(REPO / "docs/timings.md") == expected, \
        "docs/timings.md is stale: run `python -m aea.timing render --update docs/timings.md`"


def test_committed_timings_have_the_columns():
    for path in timing.default_files(REPO):
        timing.check_header(path)
        assert all(row["name"] and row["command"] and float(row["wall_s"]) >= 0 for row in rows(path)), path
