"""The JSON report (schema dockerdu.report/1): raw integer bytes, stable field names."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from ..report import Report
from ..text import clean


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {clean(str(k)): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, str):
        return clean(value)
    return value


def to_dict(report: Report) -> dict[str, Any]:
    """The report as JSON-ready data, `schema` and `tool` first."""
    body = _plain(report)
    return {"schema": body.pop("schema"), "tool": "dockerdu", **body}


def render_json(report: Report) -> str:
    """The report as one JSON document."""
    return json.dumps(to_dict(report), indent=2, ensure_ascii=False) + "\n"
