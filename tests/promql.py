"""What the observability tests read from the Prometheus rules and the Grafana dashboards.

``metric_names`` is a small PromQL reader, enough for the expressions we write: it drops
Grafana variables, strings, label matchers, ranges, grouping clauses, offsets and numbers,
then keeps the identifiers that are not called (functions and aggregations are followed
by a bracket).
"""

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
PROMETHEUS = REPO / "deploy" / "prometheus"
RULES = PROMETHEUS / "rules.yml"
GRAFANA = REPO / "deploy" / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))

_VARIABLES = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)")  # Grafana's $name, ${name}
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGES = re.compile(r"\[[^\[\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_OFFSETS = re.compile(r"\boffset\s+-?[0-9a-z$_]+", re.IGNORECASE)
_NUMBERS = re.compile(
    r"(?<![\w:.])(?:0x[0-9a-f]+|(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?)(?![\w:])", re.IGNORECASE
)
_IDENTIFIERS = re.compile(r"(?<![\w:$])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?")
_KEYWORDS = {"and", "or", "unless", "bool", "by", "without", "on", "ignoring", "inf", "nan"}
_KEYWORDS |= {"group_left", "group_right", "offset"}

#: Series Prometheus makes itself, not exported by linkcast.
PROMETHEUS_OWN = {"up", "ALERTS", "ALERTS_FOR_STATE"}


def metric_names(expr: str) -> set[str]:
    """The metric (and recording-rule) names an expression selects (Grafana variables too)."""
    text = _STRINGS.sub('""', _VARIABLES.sub("1", expr))
    for pattern in (_MATCHERS, _RANGES, _GROUPING, _OFFSETS, _NUMBERS):
        text = pattern.sub(" ", text)
    return {
        m.group(1)
        for m in _IDENTIFIERS.finditer(text)
        if m.group(2) is None and m.group(1).lower() not in _KEYWORDS
    }


def expand(expr: str, values: dict[str, str]) -> str:
    """A dashboard query with each Grafana variable replaced by its value in ``values``."""
    return _VARIABLES.sub(lambda m: values[m.group(1) or m.group(2)], expr)


def is_recorded(name: str) -> bool:
    """Recording-rule names have colons (level:metric:operations); exported ones do not."""
    return ":" in name


def rules() -> list[dict[str, Any]]:
    """Every rule of rules.yml, recording and alerting, in order."""
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def alerts() -> list[dict[str, Any]]:
    return [rule for rule in rules() if "alert" in rule]


def dashboard(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded


def panels(board: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, those inside rows too."""
    for panel in board.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def dashboard_exprs() -> Iterator[tuple[str, str, str]]:
    """(dashboard file, panel title, PromQL) of every query of every dashboard."""
    for path in DASHBOARDS:
        for panel in panels(dashboard(path)):
            for target in panel.get("targets", []):
                if "expr" in target:
                    yield path.name, panel.get("title", ""), target["expr"]


def used_metric_names() -> dict[str, set[str]]:
    """Each metric name a rule or a dashboard reads, with where it is read."""
    used: dict[str, set[str]] = {}
    for rule in rules():
        where = f"rule {rule.get('record') or rule.get('alert')}"
        for name in metric_names(rule["expr"]):
            used.setdefault(name, set()).add(where)
    for board, title, expr in dashboard_exprs():
        for name in metric_names(expr):
            used.setdefault(name, set()).add(f"{board}: {title}")
    return used
