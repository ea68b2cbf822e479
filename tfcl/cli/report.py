"""``report.html``: one self-contained page of a run — stages, evaluation tables, training curves, example answers.

The page is built from ``report.json`` (what :func:`write_report` is given, saved beside it), so ``tfcl report
RUN_DIR`` can write it again. Pictures and curves are inline ``data:`` PNG/JPEG, so the one file is the report.
"""

from __future__ import annotations

import base64
import html
import io
import json
import mimetypes
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

REPORT_DATA = "report.json"
REPORT_PAGE = "report.html"
CURVES = ("loss", "val_loss", "alignment", "uniformity", "effective_rank", "embedding_std")

STYLE = """
body { font-family: system-ui, "Noto Sans CJK SC", sans-serif; margin: 2em auto; max-width: 60em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; }
td.number { text-align: right; font-variant-numeric: tabular-nums; }
.answer { border-left: 3px solid #4a7; padding-left: 1em; margin: 1em 0; }
.answer img { height: 64px; margin: 0.2em; border: 1px solid #ccc; vertical-align: middle; }
.curves img { max-width: 100%; }
"""


def data_uri(content: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(content).decode('ascii')}"


def picture_uri(path: str | Path) -> str:
    """A picture file as a ``data:`` URI (its type from its name; PNG if unknown)."""
    mime = mimetypes.guess_type(str(path))[0] or "image/png"
    return data_uri(Path(path).read_bytes(), mime)


def curve_pngs(histories: Mapping[str, Mapping[str, Sequence[float]]]) -> list[tuple[str, str]]:
    """``(caption, data URI)`` of one PNG per training run: its loss and collapse diagnostics per epoch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pngs = []
    for run, history in histories.items():
        names = [name for name in CURVES if history.get(name)]
        if not names:
            continue
        figure, axes = plt.subplots(1, len(names), figsize=(3 * len(names), 2.6), squeeze=False)
        for axis, name in zip(axes[0], names):
            values = history[name]
            axis.plot(range(1, len(values) + 1), values, marker="o")
            axis.set_title(name)
            axis.set_xlabel("epoch")
        figure.tight_layout()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=80)
        plt.close(figure)
        pngs.append((f"{run}: {', '.join(names)} per epoch", data_uri(buffer.getvalue(), "image/png")))
    return pngs


def table_html(table: Mapping[str, Any]) -> str:
    """``{"title", "columns", "rows"}`` as an HTML table; numbers right-aligned to 3 decimals."""

    def cell(value: Any) -> str:
        if isinstance(value, float):
            return f'<td class="number">{value:.3f}</td>'
        if isinstance(value, int):
            return f'<td class="number">{value}</td>'
        return f"<td>{html.escape('' if value is None else str(value))}</td>"

    header = "".join(f"<th>{html.escape(column)}</th>" for column in table["columns"])
    rows = "".join(f"<tr>{''.join(cell(value) for value in row)}</tr>" for row in table["rows"])
    return f"<h3>{html.escape(table['title'])}</h3><table><tr>{header}</tr>{rows}</table>"


def answer_html(answer: Mapping[str, Any]) -> str:
    """An example answer: a heading, lines of text and pictures (paths, inlined) with captions."""
    parts = [f"<h3>{html.escape(answer['title'])}</h3>"]
    parts += [f"<div>{html.escape(line)}</div>" for line in answer.get("lines", [])]
    for caption, path in answer.get("pictures", []):
        parts.append(f'<div><img src="{picture_uri(path)}" alt="{html.escape(caption)}"> {html.escape(caption)}</div>')
    return f'<div class="answer">{"".join(parts)}</div>'


def render(data: Mapping[str, Any]) -> str:
    """The page of a report's data (see :func:`write_report`)."""
    sections = [f"<h1>{html.escape(data['title'])}</h1>"]
    sections += [f"<p>{html.escape(line)}</p>" for line in data.get("notes", [])]
    if data.get("stages"):
        sections.append("<h2>Stages</h2>")
        sections.append(
            table_html(
                {
                    "title": "pipeline steps, in the order they ran",
                    "columns": ["step", "seconds", "result"],
                    "rows": [[stage["name"], stage["seconds"], stage["result"]] for stage in data["stages"]],
                }
            )
        )
    if data.get("tables"):
        sections.append("<h2>Evaluation and counts</h2>")
        sections += [table_html(table) for table in data["tables"]]
    curves = curve_pngs(data.get("histories", {}))
    if curves:
        sections.append('<h2>Training curves</h2><div class="curves">')
        sections += [
            f'<figure><img src="{uri}" alt="{html.escape(c)}"><figcaption>{html.escape(c)}</figcaption></figure>'
            for c, uri in curves
        ]
        sections.append("</div>")
    if data.get("answers"):
        sections.append("<h2>Answers of the served models</h2>")
        sections += [answer_html(answer) for answer in data["answers"]]
    body = "\n".join(sections)
    return (
        f'<!DOCTYPE html>\n<html lang="zh"><head><meta charset="utf-8"><title>{html.escape(data["title"])}</title>'
        f"<style>{STYLE}</style></head><body>\n{body}\n</body></html>\n"
    )


def write_report(run_dir: str | Path, data: Mapping[str, Any]) -> Path:
    """Save ``data`` as ``RUN_DIR/report.json`` and write ``RUN_DIR/report.html``; returns the page's path.

    ``data``: ``title``; optional ``notes`` (lines), ``stages`` (``{"name", "seconds", "result"}``), ``tables``
    (``{"title", "columns", "rows"}``), ``histories`` (``{run: Keras history}``) and ``answers`` (``{"title",
    "lines", "pictures": [[caption, path]]}``).
    """
    run_dir = Path(run_dir)
    (run_dir / REPORT_DATA).write_text(json.dumps(data, ensure_ascii=False, indent=1, default=float))
    return rewrite_report(run_dir)


def rewrite_report(run_dir: str | Path) -> Path:
    """``RUN_DIR/report.html`` from ``RUN_DIR/report.json``; returns its path."""
    run_dir = Path(run_dir)
    page = run_dir / REPORT_PAGE
    page.write_text(render(json.loads((run_dir / REPORT_DATA).read_text())), encoding="utf-8")
    return page
