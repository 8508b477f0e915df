"""The summary table's rows: depth limit, folding and per-row figures, unformatted.

A row whose children are shown gives its own params and self MACs ("--" when
zero); a row shown without its children gives its subtree totals. So the visible
rows of an unfolded table add up to the model totals. A folded row (×N) gives the
combined totals of its N blocks; the rows beneath it describe one block.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..graph import ModelGraph, Shape
from .folding import Fold, find_folds


@dataclass
class TableRow:
    """One row of the summary table, with raw numbers; renderers format them."""

    node_id: str
    depth: int
    prefix: str                  # tree glyphs, e.g. "│    └─"
    name: str                    # path relative to the parent row
    path: str
    type: str
    count: int                   # N for a folded run of N blocks, else 1
    input_shapes: list[Shape]
    output_shapes: list[Shape]
    dtypes: list[str]
    params: int | None           # None when shown in the children instead
    shared_params: int           # params of this row already counted at an earlier row
    params_percent: float | None
    macs: int | None
    trainable: str               # "True", "False", "Partial" or "--"
    config: str
    reused: bool
    error: str | None = None
    expanded: bool = False       # its children are rows of the table


@dataclass
class Table:
    rows: list[TableRow]
    folded: bool = False
    notes: list[str] = field(default_factory=list)


def _local_name(graph: ModelGraph, node_id: str) -> str:
    d = graph.node(node_id)
    parent = d["parent"]
    if parent is None:
        return graph.model_name
    parent_path = graph.node(parent)["path"]
    path = d["path"]
    if parent_path and path.startswith(parent_path + "."):
        return path[len(parent_path) + 1:]
    return path


def _counted(d: dict) -> int:
    return d.get("params_counted", d.get("params", 0))


def _counted_own(d: dict) -> int:
    return d.get("params_own_counted", d.get("params_own", 0))


def _range_end(graph: ModelGraph, last: str) -> str:
    """'-31' for a fold ending at layers.31."""
    return "-" + graph.node(last)["path"].rpartition(".")[2]


def _trainable(d: dict) -> str:
    learnable = d.get("params", 0) - d.get("running_stat_params", 0)  # running stats are state
    if not learnable:
        return "--"
    if d.get("trainable_params") == learnable:
        return "True"
    return "False" if not d.get("trainable_params") else "Partial"


def _not_called_row(entry: dict, parent: dict, prefix: str, total_params: int) -> TableRow:
    """A row for a module never called: its params, no shapes, no MACs."""
    parent_path = parent["path"]
    path = entry["path"]
    name = path[len(parent_path) + 1:] if parent_path and path.startswith(parent_path + ".") else path
    params = entry["params"]
    trainable = ("--" if not params else "True" if entry["trainable_params"] == params
                 else "False" if not entry["trainable_params"] else "Partial")
    return TableRow(
        node_id=f"not-called:{path}", depth=parent["depth"] + 1, prefix=prefix, name=name,
        path=path, type=f"{entry['type']}, not called", count=1, input_shapes=[],
        output_shapes=[], dtypes=[], params=params, shared_params=0,
        params_percent=(100.0 * params / total_params) if params else None, macs=None,
        trainable=trainable, config="", reused=False)


def build_table(graph: ModelGraph, depth: int = 3, fold: bool = True) -> Table:
    """Rows of the calls at depth <= `depth`, with identical sibling runs folded."""
    folds = find_folds(graph) if fold else {}
    total_params = graph.totals.params or 1
    rows: list[TableRow] = []
    used_fold = False

    def visible_children(node_id: str) -> list[str]:
        if graph.node(node_id)["depth"] >= depth:
            return []
        out = []
        for child in graph.children(node_id):
            f: Fold | None = folds.get(child)
            if f is None or f.first == child:
                out.append(child)
        return out

    not_called: dict[str, list[dict]] = {}
    for entry in graph.meta.get("not_called", []):
        not_called.setdefault(entry["parent"], []).append(entry)

    def visit(node_id: str, lead: str, is_last: bool, is_root: bool, count: int) -> None:
        nonlocal used_fold
        d = graph.node(node_id)
        idle = not_called.get(node_id, []) if d["depth"] < depth else []
        kids = visible_children(node_id)
        expanded = bool(kids or idle)
        fold_here = folds.get(node_id)
        n = fold_here.count if fold_here and fold_here.first == node_id else 1
        used_fold |= n > 1
        members = fold_here.members if n > 1 else (node_id,)
        reused = d["call_index"] > 0
        # Params are the "counted" figures: each unique array credited to the first call
        # holding it, so a tied weight is not shown twice.
        if n > 1:
            params = sum(_counted(graph.node(m)) for m in members)
            macs = sum(graph.node(m).get("macs_total", 0) for m in members)
        elif expanded:
            params, macs = _counted_own(d) or None, d.get("macs_self", 0) or None
        else:
            params, macs = _counted(d), d.get("macs_total", 0)
        shown_all = (sum(graph.node(m).get("params", 0) for m in members) if n > 1
                     else d.get("params_own", 0) if expanded else d.get("params", 0))
        shared = max(0, shown_all - (params or 0))
        if reused and params is not None:
            params = None
        if not d.get("complete", True):  # never returned: its cost is unknown
            macs = None
        prefix = "" if is_root else lead + ("└─" if is_last else "├─")
        rows.append(TableRow(
            node_id=node_id, depth=d["depth"], prefix=prefix,
            name=_local_name(graph, node_id) + (_range_end(graph, members[-1]) if n > 1 else ""),
            path=d["path"], type=d["type"], count=n,
            input_shapes=[tuple(s) for s in d["input_shapes"]],
            output_shapes=[tuple(s) for s in d["output_shapes"]],
            dtypes=list(dict.fromkeys(d["output_dtypes"])),
            params=params,
            shared_params=0 if reused else shared,
            params_percent=(100.0 * params / total_params) if params else None,
            macs=macs, trainable=_trainable(d), config=d.get("config", ""),
            reused=reused, error=d.get("error"), expanded=expanded,
        ))
        child_lead = "" if is_root else lead + ("    " if is_last else "│    ")
        for i, child in enumerate(kids):
            visit(child, child_lead, i == len(kids) - 1 and not idle, False, 1)
        for i, entry in enumerate(idle):
            rows.append(_not_called_row(entry, d, child_lead + ("└─" if i == len(idle) - 1 else "├─"),
                                        total_params))

    if "c0" in graph.graph:
        visit("c0", "", True, True, 1)
    notes = []
    if used_fold:
        notes.append("×N: N identical consecutive blocks folded into one row with their "
                     "combined params and MACs; the rows beneath describe one block.")
    if any(r.reused for r in rows):
        notes.append("(reused): a further call of a module already listed; its params count once.")
    if any(r.node_id.startswith("not-called:") for r in rows):
        notes.append("not called: a module of the model the forward pass never called; its "
                     "params count (they are the model's), it has no shapes or MACs.")
    if any(r.shared_params for r in rows):
        notes.append("(shared): parameters already counted at an earlier row (tied weights, "
                     "shared modules); each array counts once.")
    return Table(rows=rows, folded=used_fold, notes=notes)
