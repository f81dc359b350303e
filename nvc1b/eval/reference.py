"""The paper's BD-rate tables against VTM-13.2 (Tables III and IV), shipped as data for reports."""

from __future__ import annotations

from pathlib import Path

from pydantic import model_validator

from ..config.loading import Strict, load

PAPER_TABLES = Path(__file__).with_name("paper_bdrate.yaml")


class PaperTable(Strict):
    title: str
    """Caption, as in the paper."""
    columns: list[str]
    """Test-set names (as in data/*.yaml), then 'Average'."""
    rows: dict[str, list[float]]
    """Coder → BD-rate (%) per column."""

    @model_validator(mode="after")
    def _check(self) -> PaperTable:
        for name, values in self.rows.items():
            if len(values) != len(self.columns):
                raise ValueError(f"row {name} has {len(values)} values for {len(self.columns)} columns")
        return self

    def value(self, coder: str, column: str) -> float:
        return self.rows[coder][self.columns.index(column)]

    def format(self) -> str:
        """The table in Markdown."""
        lines = [f"| anchor: VTM | {' | '.join(self.columns)} |", "|---|" + "---:|" * len(self.columns)]
        lines += [f"| {name} | {' | '.join(_number(v) for v in values)} |" for name, values in self.rows.items()]
        return "\n".join(lines)


def _number(value: float) -> str:
    """One decimal as the paper prints, two where the paper gives two (1.73)."""
    return f"{value:.1f}" if round(value, 1) == value else f"{value:.2f}"


class PaperTables(Strict):
    source: str
    """The publication."""
    anchor: str
    """The anchor codec of every BD-rate."""
    tables: dict[str, PaperTable]
    """'rgb' (Table III) and 'yuv420' (Table IV)."""


def paper_tables(path: str | Path = PAPER_TABLES) -> PaperTables:
    """The paper's Tables III ('rgb') and IV ('yuv420')."""
    return load(PaperTables, path)
