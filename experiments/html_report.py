"""``report.html``: ``report.md`` as one self-contained HTML file, its figures embedded as
base64 PNG, to open in a browser or send as one attachment.

Rendered with the ``markdown`` package when it is installed, else with a small converter
of what ``report.md`` holds: headings, paragraphs, lists, tables, images and code blocks.
"""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

from pnyx.experiments.store import atomic_write_text
from pnyx.paths import run_path, within

_STYLE = ("body{font-family:system-ui,sans-serif;max-width:70em;margin:2em auto;padding:0 1em;line-height:1.45}"
          "table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #bbb;padding:.25em .6em}"
          "th{background:#eee}img{max-width:100%;display:block;margin:1em 0}"
          "pre{background:#f6f6f6;padding:1em;overflow-x:auto}code{background:#f6f6f6}")
#: A figure of the run, or of a suite part's folder (``part/plots/name.png``).
_IMAGE = re.compile(r'<img alt="([^"]*)" src="((?:[A-Za-z0-9_-]+/)?plots/[^"/]+\.png)"\s*/?>')


def write_html_report(out: Path) -> None:
    """Write ``out/report.html`` from ``out/report.md`` and the PNG files it shows."""
    text = (out / "report.md").read_text()
    title = html.escape(text.splitlines()[0].lstrip("# ") if text else "pnyx report")
    body = _IMAGE.sub(lambda m: _embedded(out, m.group(1), m.group(2)), to_html(text))
    atomic_write_text(run_path(out, "report.html"), f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
                                           f"<title>{title}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n"
                                           f"{body}\n</body>\n</html>\n")


def _embedded(out: Path, alt: str, src: str) -> str:
    path = within(out, out / src)
    if path is None or not path.is_file():
        return f"<p>(missing figure {html.escape(src)})</p>"
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{alt}" src="data:image/png;base64,{data}">'


def to_html(text: str) -> str:
    """The HTML of Markdown ``text``."""
    try:
        import markdown
    except ImportError:
        return _convert(text)
    return markdown.markdown(text, extensions=["tables", "fenced_code"], output_format="html")


def _inline(text: str) -> str:
    text = html.escape(text, quote=False)
    text = re.sub(r"!\[([^\]]*)\]\(([^)]+)\)", r'<img alt="\1" src="\2">', text)
    text = re.sub(r"`([^`]+)`", r"<code>\1</code>", text)
    return re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", text)


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def _convert(text: str) -> str:
    """A small Markdown converter for the constructs of ``report.md``."""
    out: list[str] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("```"):
            end = next((j for j in range(i + 1, len(lines)) if lines[j].startswith("```")), len(lines))
            out.append("<pre><code>" + html.escape("\n".join(lines[i + 1:end])) + "</code></pre>")
            i = end + 1
        elif re.match(r"#{1,6} ", line):
            level = len(line) - len(line.lstrip("#"))
            out.append(f"<h{level}>{_inline(line[level + 1:])}</h{level}>")
            i += 1
        elif line.startswith("|") and i + 1 < len(lines) and re.fullmatch(r"[|\-: ]+", lines[i + 1]):
            rows = ["<tr>" + "".join(f"<th>{_inline(c)}</th>" for c in _cells(line)) + "</tr>"]
            i += 2
            while i < len(lines) and lines[i].startswith("|"):
                rows.append("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in _cells(lines[i])) + "</tr>")
                i += 1
            out.append("<table>\n" + "\n".join(rows) + "\n</table>")
        elif line.startswith(("- ", "* ")):
            items = []
            while i < len(lines) and lines[i].startswith(("- ", "* ")):
                items.append(f"<li>{_inline(lines[i][2:])}</li>")
                i += 1
            out.append("<ul>\n" + "\n".join(items) + "\n</ul>")
        elif line.strip():
            paragraph = [line]
            i += 1
            while i < len(lines) and lines[i].strip() and not lines[i].startswith(("#", "|", "```", "- ", "* ")):
                paragraph.append(lines[i])
                i += 1
            out.append("<p>" + _inline(" ".join(paragraph)) + "</p>")
        else:
            i += 1
    return "\n".join(out)
