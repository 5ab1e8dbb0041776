"""The report as plain data (sections of paragraphs, tables and figures), before any format.

The HTML and Markdown writers render the same Document, so the two never disagree, and tests
can check the numbers in the tables without parsing either format.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from matplotlib.figure import Figure

NUMERIC_START = set("0123456789+-≤<[")


def numeric(text: str) -> bool:
    """Cells that read as numbers are right-aligned by the writers."""
    return text[:1] in NUMERIC_START


@dataclass
class Paragraph:
    text: str


@dataclass
class Bullets:
    items: list[str]


@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[list[str]]
    note: str = ""
    highlight: set[int] = field(default_factory=set)  # indices of rows to emphasise

    def numeric_columns(self) -> list[bool]:
        """Per column: right-aligned when its first filled cell reads as a number."""
        out = []
        for i in range(len(self.columns)):
            filled = [row[i] for row in self.rows if row[i] != "-"]
            out.append(numeric(filled[0]) if filled else True)
        return out

    def column(self, name: str) -> list[str]:
        i = self.columns.index(name)
        return [row[i] for row in self.rows]


@dataclass
class FigureBlock:
    name: str  # file stem when written to disk
    caption: str
    figure: Figure


Block = Paragraph | Bullets | Table | FigureBlock


@dataclass
class Section:
    id: str
    title: str
    blocks: list[Block] = field(default_factory=list)
    unavailable: str | None = None  # why the whole section cannot be shown
    omitted: list[str] = field(default_factory=list)  # parts left out, each with its reason

    def add(self, *blocks: Block) -> Section:
        self.blocks.extend(blocks)
        return self

    def tables(self) -> list[Table]:
        return [b for b in self.blocks if isinstance(b, Table)]

    def figures(self) -> list[FigureBlock]:
        return [b for b in self.blocks if isinstance(b, FigureBlock)]


@dataclass
class Document:
    title: str
    intro: list[str]
    sections: list[Section]

    def section(self, id_: str) -> Section:
        return next(s for s in self.sections if s.id == id_)

    def not_shown(self) -> list[str]:
        """'Section: reason' for every section or part the data does not support."""
        out = [f"{s.title}: {s.unavailable}" for s in self.sections if s.unavailable]
        out += [f"{s.title}: {note}" for s in self.sections for note in s.omitted]
        return out

    def figures(self) -> list[FigureBlock]:
        return [f for s in self.sections for f in s.figures()]
