"""A Document as a Markdown summary: the same tables and verdicts, figures linked when written."""

from __future__ import annotations

from prunebench.report.document import (
    Block,
    Bullets,
    Document,
    FigureBlock,
    Paragraph,
    Table,
)


def _escape(text: str) -> str:
    return text.replace("|", "\\|")


def _table(t: Table) -> str:
    lines = [f"**{t.title}**", "", "| " + " | ".join(_escape(c) for c in t.columns) + " |"]
    lines.append("|" + "|".join("--:" if n else ":--" for n in t.numeric_columns()) + "|")
    for i, row in enumerate(t.rows):
        cells = [_escape(v) for v in row]
        if i in t.highlight:
            cells = [f"**{c}**" if c != "-" else c for c in cells]
        lines.append("| " + " | ".join(cells) + " |")
    if t.note:
        lines += ["", t.note]
    return "\n".join(lines)


def _block(block: Block, figure_files: dict[str, str]) -> str:
    if isinstance(block, Paragraph):
        return block.text
    if isinstance(block, Bullets):
        return "\n".join(f"- {item}" for item in block.items)
    if isinstance(block, Table):
        return _table(block)
    if isinstance(block, FigureBlock):
        path = figure_files.get(block.name)
        if path:
            return f"![{block.caption}]({path})\n\n*{block.caption}*"
        return f"*Figure `{block.name}` (in report.html; `--figures png|svg` writes it): {block.caption}*"
    raise TypeError(f"unknown block {type(block).__name__}")


def render_markdown(doc: Document, figure_files: dict[str, str] | None = None) -> str:
    """`figure_files`: relative path of each figure written to disk, by figure name."""
    figure_files = figure_files or {}
    parts = [f"# {doc.title}", *doc.intro]
    missing = doc.not_shown()
    if missing:
        parts.append("**Not shown, and why**\n\n" + "\n".join(f"- {m}" for m in missing))
    for s in doc.sections:
        parts.append(f"## {s.title}")
        if s.unavailable:
            parts.append(f"*Not shown: {s.unavailable}.*")
        parts.extend(f"*Not shown: {note}.*" for note in s.omitted)
        parts.extend(_block(b, figure_files) for b in s.blocks)
    return "\n\n".join(parts) + "\n"
