"""A Document as one self-contained HTML file: inline CSS, figures as base64 PNG, no scripts.

It opens from disk in any browser, can be mailed as one file and never fetches anything.
"""

from __future__ import annotations

import base64
from html import escape

from prunebench.report.document import (
    Block,
    Bullets,
    Document,
    FigureBlock,
    Paragraph,
    Table,
)

CSS = """
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1a1a1a;
       max-width: 1180px; margin: 2em auto; padding: 0 1.5em; }
h1 { font-size: 1.7em; margin-bottom: 0.2em; }
h2 { font-size: 1.3em; margin-top: 2em; border-bottom: 2px solid #ddd; padding-bottom: 0.2em; }
h3 { font-size: 1.05em; margin: 1.4em 0 0.4em; }
nav ol { columns: 2; font-size: 0.95em; }
.notshown { background: #f6f6f6; border-left: 4px solid #999; padding: 0.6em 1em; }
.unavailable { color: #555; font-style: italic; }
figure { margin: 1em 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #e3e3e3; }
figcaption { font-size: 0.9em; color: #444; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; margin: 0.4em 0 1em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; vertical-align: top; }
th { background: #eef0f3; }
td:first-child, th:first-child { text-align: left; }
td.text, th.text { text-align: left; }
td { white-space: nowrap; } td.text:last-child { white-space: normal; }
tr.best td { font-weight: bold; background: #fffbe6; }
td.holds { background: #e3f4e1; } td.fails { background: #fbe3e1; } td.nodata { color: #666; }
td.open { background: #fdf6dc; }
"""

VERDICT_CLASS = {  # claims' and decisions' verdict cells
    "holds": "holds",
    "better": "holds",
    "equivalent": "holds",
    "does not hold": "fails",
    "not enough data": "nodata",
    "inconclusive": "open",
}


def _cell(value: str, is_numeric: bool) -> str:
    classes = [VERDICT_CLASS[value]] if value in VERDICT_CLASS else []
    if not is_numeric:
        classes.append("text")
    attr = f' class="{" ".join(classes)}"' if classes else ""
    return f"<td{attr}>{escape(value)}</td>"


def _table(t: Table) -> str:
    align = t.numeric_columns()
    head = "".join(
        ("<th>" if a else "<th class='text'>") + f"{escape(c)}</th>"
        for c, a in zip(t.columns, align, strict=True)
    )
    body = []
    for i, row in enumerate(t.rows):
        cls = ' class="best"' if i in t.highlight else ""
        cells = "".join(_cell(v, a) for v, a in zip(row, align, strict=True))
        body.append(f"<tr{cls}>{cells}</tr>")
    note = f"<p>{escape(t.note)}</p>" if t.note else ""
    return (
        f"<h3>{escape(t.title)}</h3><div class='scroll'><table><thead><tr>{head}</tr></thead>"
        f"<tbody>{''.join(body)}</tbody></table></div>{note}"
    )


def _block(block: Block, images: dict[str, bytes]) -> str:
    if isinstance(block, Paragraph):
        return f"<p>{escape(block.text)}</p>"
    if isinstance(block, Bullets):
        return "<ul>" + "".join(f"<li>{escape(i)}</li>" for i in block.items) + "</ul>"
    if isinstance(block, Table):
        return _table(block)
    if isinstance(block, FigureBlock):
        data = base64.b64encode(images[block.name]).decode("ascii")
        return (
            f"<figure id='fig-{escape(block.name)}'><img alt='{escape(block.caption)}' "
            f"src='data:image/png;base64,{data}'><figcaption>{escape(block.caption)}"
            "</figcaption></figure>"
        )
    raise TypeError(f"unknown block {type(block).__name__}")


def render_html(doc: Document, images: dict[str, bytes]) -> str:
    """`images`: PNG bytes per figure name."""
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>{escape(doc.title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{escape(doc.title)}</h1>",
        *(f"<p>{escape(p)}</p>" for p in doc.intro),
        "<nav><ol>",
        *(f"<li><a href='#{s.id}'>{escape(s.title)}</a></li>" for s in doc.sections),
        "</ol></nav>",
    ]
    missing = doc.not_shown()
    if missing:
        items = "".join(f"<li>{escape(m)}</li>" for m in missing)
        parts.append(f"<div class='notshown'><b>Not shown, and why</b><ul>{items}</ul></div>")
    for s in doc.sections:
        parts.append(f"<section id='{s.id}'><h2>{escape(s.title)}</h2>")
        if s.unavailable:
            parts.append(f"<p class='unavailable'>Not shown: {escape(s.unavailable)}.</p>")
        for note in s.omitted:
            parts.append(f"<p class='unavailable'>Not shown: {escape(note)}.</p>")
        parts.extend(_block(b, images) for b in s.blocks)
        parts.append("</section>")
    parts.append("</body></html>\n")
    return "\n".join(parts)
