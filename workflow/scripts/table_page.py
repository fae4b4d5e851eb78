"""One self-contained HTML page per table for `snakemake --report`, which shows HTML and pictures inline but
offers CSV and Markdown only as downloads: the diff against the paper and the paper's claims (from
<table>.diff.md), the figure, then every cell of <table>.csv.

No `from __future__` import: Snakemake puts its preamble above this file."""

import base64
import html
import itertools
import logging
import re
from pathlib import Path

import pandas as pd

from aea.io import write_text

STYLE = """body{font-family:sans-serif;margin:1.5em;max-width:80em}table{border-collapse:collapse;font-size:90%}
td,th{border:1px solid #ccc;padding:2px 6px;text-align:left}th{background:#eee}img{max-width:100%}"""


def inline(text: str) -> str:
    """Escaped text with the inline marks aea's diff uses: **bold** and `code`."""
    text = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", html.escape(text, quote=False))
    return re.sub(r"`(.+?)`", r"<code>\1</code>", text)


def line_kind(line: str) -> str:
    if not line.strip():
        return "blank"
    return {"#": "heading", "-": "item", "|": "table"}.get(line.lstrip()[0], "text")


def table_html(lines: list[str]) -> str:
    """A pipe table: first row the header, the |---| row skipped."""
    rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in lines]
    rows = [r for r in rows if not all(re.fullmatch(r":?-+:?", c) for c in r)]
    head = "".join(f"<th>{inline(c)}</th>" for c in rows[0])
    body = "".join("<tr>" + "".join(f"<td>{inline(c)}</td>" for c in r) + "</tr>" for r in rows[1:])
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def markdown_html(markdown: str) -> str:
    """The Markdown subset aea's diff is written in: headings, bullet lists, pipe tables, paragraphs."""
    parts = []
    for kind, group in itertools.groupby(markdown.splitlines(), key=line_kind):
        lines = list(group)
        if kind == "heading":
            for line in lines:
                level = min(len(line) - len(line.lstrip("#")), 5)
                parts.append(f"<h{level}>{inline(line.lstrip('#').strip())}</h{level}>")
        elif kind == "item":
            parts.append("<ul>" + "".join(f"<li>{inline(line.lstrip()[1:].strip())}</li>" for line in lines) + "</ul>")
        elif kind == "table":
            parts.append(table_html(lines))
        elif kind == "text":
            parts.append(f"<p>{inline(' '.join(lines))}</p>")
    return "\n".join(parts)


def page(name: str, diff_markdown: str, table: pd.DataFrame, figure_png: bytes | None) -> str:
    figure = ""
    if figure_png is not None:
        data = base64.b64encode(figure_png).decode()
        figure = f'<h2>Figure</h2><img alt="{name}" src="data:image/png;base64,{data}">'
    cells = table.to_html(index=False, na_rep="", escape=True)
    head = f'<head><meta charset="utf-8"><title>{name}</title><style>{STYLE}</style></head>'
    body = f"{markdown_html(diff_markdown)}\n{figure}\n<h2>Every cell ({name}.csv)</h2>\n{cells}"
    return f"<!DOCTYPE html>\n<html>{head}<body>\n{body}\n</body></html>\n"


def main(smk) -> None:
    logging.basicConfig(filename=smk.log[0], level=logging.INFO, format="%(message)s")
    figure = Path(smk.input.figure).read_bytes() if "figure" in smk.input.keys() else None
    text = page(smk.wildcards.table, Path(smk.input.diff).read_text(encoding="utf-8"),
                pd.read_csv(smk.input.table, keep_default_na=False), figure)
    write_text(smk.output[0], text)
    logging.info("wrote %s", smk.output[0])


if __name__ == "__main__":
    main(snakemake)  # noqa: F821  (the object Snakemake's script directive provides)
