"""``nexusify audit --graph``: the dependency graph of shared packages and consumers as Mermaid
or Graphviz dot."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nexusify.audit.report import AuditReport

GRAPH_FORMATS = ("mermaid", "dot")


def _node_id(name: str) -> str:
    return "n_" + re.sub(r"[^A-Za-z0-9_]", "_", name)


def render_graph(report: AuditReport, fmt: str) -> str:
    """The dependency graph of shared packages and consumers as Mermaid or Graphviz dot.
    Solid edges are runtime dependencies, dashed ones dev/test-only."""
    ws = report.workspace
    nodes = [p for p in ws.projects if p.normalized and (ws.is_shared(p) or ws.is_consumer(p))]
    known = {p.normalized for p in nodes}
    edges = [(a, b, r) for a, b, r in ws.edges() if a in known and b in known]
    if fmt == "mermaid":
        lines = ["graph LR"]
        for p in nodes:
            assert p.normalized is not None
            label = f"{p.name} {p.version}" if ws.is_shared(p) and p.version else (p.name or p.normalized)
            shape = ('["', '"]') if ws.is_shared(p) else ('(["', '"])')
            lines.append(f"    {_node_id(p.normalized)}{shape[0]}{label}{shape[1]}")
        for a, b, runtime in edges:
            arrow = "-->" if runtime else "-. dev .->"
            lines.append(f"    {_node_id(a)} {arrow} {_node_id(b)}")
        lines.append("    classDef service fill:#e8f1ff,stroke:#3b6fb6")
        services = [_node_id(p.normalized) for p in nodes if ws.is_consumer(p) and p.normalized]
        if services:
            lines.append(f"    class {','.join(services)} service")
        return "\n".join(lines) + "\n"
    if fmt == "dot":
        lines = ["digraph nexusify {", "    rankdir=LR;", '    node [fontname="Helvetica"];']
        for p in nodes:
            label = f"{p.name}\\n{p.version}" if ws.is_shared(p) and p.version else (p.name or "")
            node_shape = "box" if ws.is_shared(p) else "ellipse"
            lines.append(f'    "{p.normalized}" [label="{label}", shape={node_shape}];')
        for a, b, runtime in edges:
            style = "" if runtime else ' [style=dashed, label="dev"]'
            lines.append(f'    "{a}" -> "{b}"{style};')
        lines.append("}")
        return "\n".join(lines) + "\n"
    raise ValueError(f"unknown graph format {fmt!r}; use one of {', '.join(GRAPH_FORMATS)}")
