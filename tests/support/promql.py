"""Metric names out of PromQL expressions and out of a Prometheus text exposition."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_MATCHERS = re.compile(r"\{[^}]*\}")
_RANGES = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(
    r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", re.IGNORECASE
)
_NUMBERS = re.compile(r"\b\d+(?:\.\d+)?(?:e[+-]?\d+)?(?:ms|[smhdwy])?\b")
_NAME = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
_KEYWORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "inf", "nan"}


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (functions, labels and keywords left out).

    Grafana's ``$variables`` are dropped first.
    """
    text = re.sub(r"\$\{?\w+\}?", "", expr)
    text = _STRINGS.sub("", text)
    text = _MATCHERS.sub(" ", text)
    text = _RANGES.sub(" ", text)
    text = _GROUPING.sub(" ", text)
    text = _NUMBERS.sub(" ", text)
    names = set()
    for match in _NAME.finditer(text):
        rest = text[match.end() :].lstrip()
        if rest.startswith("("):
            continue  # a function or an aggregation
        if match.group(0).lower() in _KEYWORDS:
            continue
        names.add(match.group(0))
    return names


def dashboard_exprs(dashboard: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """``(panel title, expr)`` of every query of a Grafana dashboard, rows included."""

    def walk(panels: list[dict[str, Any]]) -> Iterator[tuple[str, str]]:
        for panel in panels:
            for target in panel.get("targets", []):
                if target.get("expr"):
                    yield panel.get("title", ""), target["expr"]
            yield from walk(panel.get("panels", []))

    yield from walk(dashboard.get("panels", []))


_SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("_sum", "_count", "_created", ""),
    "untyped": ("",),
}


def exposed_names(text: str) -> set[str]:
    """Every series name a Prometheus text exposition offers: the samples in it, and for each
    ``# TYPE`` the names its kind gives (a counter's ``_total``, a histogram's ``_bucket``...),
    so a metric with no sample yet still counts."""
    names: set[str] = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(maxsplit=3)
            base = name.removesuffix("_total") if kind == "counter" else name
            names.update(base + suffix for suffix in _SUFFIXES.get(kind.strip(), ("",)))
        elif line and not line.startswith("#"):
            match = _NAME.match(line)
            if match:
                names.add(match.group(0))
    return names


RAY_METRICS: frozenset[str] = frozenset(
    {"ray_component_rss_mb", "ray_component_uss_mb", "ray_component_cpu_percentage"}
)
"""Ray's own metrics the Grafana dashboard queries (actor memory and CPU, from each node's
metrics agent); ``tests/integration/test_dashboard_ray_metrics.py`` checks a real Ray node
exports them."""
