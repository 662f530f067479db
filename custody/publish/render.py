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


def chart(table: Table, title: str) -> dict[str, Any]:
    """Bars of the table's row totals (or, without row totals, its first column) per period;
    a suppressed value is drawn as an outlined placeholder marked 'suppressed'."""
    column = TOTAL if table.row_totals else table.columns[0]
    values = [(row, table.published((row, column))) for row in table.rows]
    top = max([v for _, v in values if v is not None] + [1])
    left, bottom = 34.0, 70.0
    inner_h = CHART_HEIGHT - bottom - 30.0
    slot = (CHART_WIDTH - left - 10) / max(len(values), 1)
    bars = []
    for i, (row, value) in enumerate(values):
        height = inner_h * (value / top) if value is not None else inner_h * 0.15
        bars.append(Bar(round(left + i * slot + slot * 0.15, 1), round(CHART_HEIGHT - bottom - height, 1),
                        round(slot * 0.7, 1), round(height, 1), row, "suppressed" if value is None else str(value),
                        value is None))
    return {"title": title, "bars": bars, "top": top, "width": CHART_WIDTH, "height": CHART_HEIGHT,
            "baseline": CHART_HEIGHT - bottom, "left": left}


def render_html(context: Mapping[str, Any]) -> bytes:
    from jinja2 import Environment, PackageLoader, StrictUndefined

    environment = Environment(
        loader=PackageLoader("custody.publish", "templates"), autoescape=True, undefined=StrictUndefined,
        trim_blocks=True, lstrip_blocks=True,
    )
    return environment.get_template("index.html.j2").render(**context).encode("utf-8")
