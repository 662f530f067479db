"""The files of a release: one CSV per table, ``data.json``, the Frictionless data package
that describes them (``datapackage.json``) and one static HTML page rendered from Jinja2
templates (autoescaped) with inline SVG charts. Nothing in the page is fetched from elsewhere."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from custody.publish.stats import TOTAL, Table

FORMAT = "custody-publish v1"
CHART_WIDTH, CHART_HEIGHT = 480, 280


def table_csv(table: Table) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["period", table.column_dimension, "count", "suppressed"])
    for row, column in table.cells():
        value = table.published((row, column))
        writer.writerow([row, column, "" if value is None else value, table.suppressed.get((row, column), "")])
    return out.getvalue().encode("utf-8")


def table_schema(table: Table) -> dict[str, Any]:
    return {
        "fields": [
            {"name": "period", "type": "string", "constraints": {"required": True, "enum": table.all_rows}},
            {"name": table.column_dimension, "type": "string",
             "constraints": {"required": True, "enum": table.all_columns}},
            {"name": "count", "type": "integer", "constraints": {"minimum": 0},
             "description": f"number of {table.unit}; empty when suppressed"},
            {"name": "suppressed", "type": "string", "constraints": {"enum": ["primary", "complementary"]},
             "description": "why the count is not published; empty when it is"},
        ],
        "missingValues": [""],
        "primaryKey": ["period", table.column_dimension],
    }


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def datapackage(files: Mapping[str, bytes], tables: Sequence[Table], title: str, checkpoint: Mapping[str, Any]) -> bytes:
    resources: list[dict[str, Any]] = []
    for table in tables:
        path = f"{table.name}.csv"
        resources.append({
            "name": table.name.replace("_", "-"), "title": table.title, "path": path, "type": "table",
            "format": "csv", "mediatype": "text/csv", "encoding": "utf-8",
            "hash": "sha256:" + sha256(files[path]), "bytes": len(files[path]), "schema": table_schema(table),
        })
    resources.append({
        "name": "data", "title": "Every table, the rules and the suppression, as JSON", "path": "data.json",
        "type": "json", "format": "json", "mediatype": "application/json",
        "hash": "sha256:" + sha256(files["data.json"]), "bytes": len(files["data.json"]),
    })
    package = {
        "name": "custody-public-data",
        "title": title,
        "description": "Aggregated counts of documented incidents, computed from the custody ledger at checkpoint "
                       f"{checkpoint['size']}. Small counts are suppressed; see data.json.",
        "licenses": [{"name": "ODC-PDDL-1.0", "path": "https://opendatacommons.org/licenses/pddl/",
                      "title": "Open Data Commons Public Domain Dedication and License v1.0"}],
        "resources": resources,
    }
    return (json.dumps(package, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str
    value: str
    suppressed: bool
    series: int


@dataclass(frozen=True)
class Group:
    """The bars of one period and where its label goes."""

    label: str
    x: float
    bars: list[Bar]


def chart(table: Table, title: str, columns: Sequence[str] = ()) -> dict[str, Any]:
    """Bars per period: of the given ``columns`` side by side (a legend names them), else of
    the table's row totals (or, without row totals, its first column). A suppressed value is
    drawn as an outlined placeholder marked 'suppressed'."""
    series = list(columns) or [TOTAL if table.row_totals else table.columns[0]]
    values = [[(row, table.published((row, column))) for column in series] for row in table.rows]
    top = max([v for group in values for _, v in group if v is not None] + [1])
    left, bottom = 34.0, 70.0
    inner_h = CHART_HEIGHT - bottom - 30.0
    slot = (CHART_WIDTH - left - 10) / max(len(values), 1)
    width = slot * 0.7 / len(series)
    groups = []
    for i, group in enumerate(values):
        start = left + i * slot + slot * 0.15
        bars = []
        for j, (row, value) in enumerate(group):
            height = inner_h * (value / top) if value is not None else inner_h * 0.15
            label = row if not columns else f"{row}, {table.column_titles.get(series[j], series[j])}"
            bars.append(Bar(round(start + j * width, 1), round(CHART_HEIGHT - bottom - height, 1), round(width, 1),
                            round(height, 1), label, "suppressed" if value is None else str(value), value is None, j))
        groups.append(Group(table.rows[i], round(start + slot * 0.35, 1), bars))
    legend = [(j, table.column_titles.get(c, c)) for j, c in enumerate(series)] if columns else []
    return {"title": title, "groups": groups, "top": top, "width": CHART_WIDTH, "height": CHART_HEIGHT,
            "baseline": CHART_HEIGHT - bottom, "left": left, "legend": legend, "values_shown": not columns}


def render_html(context: Mapping[str, Any]) -> bytes:
    from jinja2 import Environment, PackageLoader, StrictUndefined

    environment = Environment(
        loader=PackageLoader("custody.publish", "templates"), autoescape=True, undefined=StrictUndefined,
        trim_blocks=True, lstrip_blocks=True,
    )
    return environment.get_template("index.html.j2").render(**context).encode("utf-8")
