"""What a diagram draws: the calls visible at a depth, folded runs, and the edges between them.

A call deeper than the drawn depth is drawn as its ancestor at that depth; an
opened call (children shown) is a cluster. Expanded paths open their whole
subtree (and their ancestors). A fold of N identical siblings is drawn once, by
its first member; everything inside the other members maps onto the matching
call of the first. Edges: a producer that is a cluster resolves through
`returns_from` to the drawn calls inside it; a consumer that is a cluster is
dropped, since its inner consumers carry their own edges.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

from ..errors import InputSpecError
from ..graph import ModelGraph, Shape
from .folding import Fold, find_folds

DEFAULT_BUDGET = 400


@dataclass
class VisibleNode:
    """A drawn box or cluster (`is_cluster`), or a model input/output (`kind`)."""

    id: str
    kind: str                        # "call", "input" or "output"
    parent: str | None               # enclosing drawn cluster; None at top level
    is_cluster: bool = False
    members: tuple[str, ...] = ()    # the fold's calls (first is `id`); () when not folded
    children: list[str] = field(default_factory=list)   # clusters only, drawing order
    call_number: int = 0             # 1-based call of a reused module, else 0
    call_total: int = 1              # calls of this module object in the trace

    @property
    def count(self) -> int:
        return len(self.members) or 1

    @property
    def calls(self) -> tuple[str, ...]:
        return self.members or (self.id,)


@dataclass
class VisibleEdge:
    src: str
    dst: str
    shapes: list[Shape]
    dtypes: list[str]


@dataclass
class VisibleGraph:
    nodes: dict[str, VisibleNode]    # in drawing order (pre-order)
    edges: list[VisibleEdge]
    depth: int                       # the depth actually drawn
    notes: list[str] = field(default_factory=list)

    def boxes(self) -> list[VisibleNode]:
        return [n for n in self.nodes.values() if not n.is_cluster]

    def clusters(self) -> list[VisibleNode]:
        return [n for n in self.nodes.values() if n.is_cluster]


def _preorder(graph: ModelGraph) -> tuple[list[str], dict[str, int]]:
    """Calls in pre-order and, for each, the index just past its subtree."""
    order: list[str] = []
    end: dict[str, int] = {}
    if graph.root not in graph.graph:
        return order, end

    def visit(n: str) -> None:
        order.append(n)
        for c in graph.children(n):
            visit(c)
        end[n] = len(order)

    visit(graph.root)
    return order, end


def _matching_calls(graph: ModelGraph, path: str) -> list[str]:
    hits = [n for n in graph.calls() if path == graph.node(n)["path"] or path in graph.node(n)["paths"]]
    if not hits:
        known = sorted({graph.node(n)["path"] for n in graph.calls()} - {""})
        close = difflib.get_close_matches(path, known, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else f"; e.g. {', '.join(known[:3])}"
        raise InputSpecError(f"--expand {path!r}: no module call has this path{hint}")
    return hits


def _split_folds(folds: dict[str, Fold], keep_out: set[str]) -> dict[str, Fold]:
    """Split fold runs around members in `keep_out` (expanded blocks other than the first)."""
    out: dict[str, Fold] = {}
    for fold in {f.first: f for f in folds.values()}.values():
        segment: list[str] = []
        runs: list[list[str]] = []
        for m in fold.members:
            if m in keep_out and m != fold.first:
                runs += [segment, [m]]
                segment = []
            else:
                segment.append(m)
        runs.append(segment)
        for run in runs:
            if len(run) >= 2:
                f = Fold(run[0], tuple(run))
                out.update({m: f for m in run})
    return out


def _split_by_key(folds: dict[str, Fold], keys: dict[str, str]) -> dict[str, Fold]:
    """Split fold runs where consecutive members' keys differ (a diff's added vs changed)."""
    out: dict[str, Fold] = {}
    for fold in {f.first: f for f in folds.values()}.values():
        run: list[str] = []
        for m in fold.members + ("",):
            if run and (not m or keys.get(m, "") != keys.get(run[-1], "")):
                if len(run) >= 2:
                    f = Fold(run[0], tuple(run))
                    out.update({x: f for x in run})
                run = []
            if m:
                run.append(m)
    return out


class _Builder:
    """Computes the visible graph for one depth; `build()` returns it."""

    def __init__(self, graph: ModelGraph, depth: int, expand: set[str], folds: dict[str, Fold]):
        self.g = graph
        self.depth = depth
        self.folds = folds
        self.order, self.end = _preorder(graph)
        self.pos = {n: i for i, n in enumerate(self.order)}
        self.expand = expand
        self.expanded_under = self._expanded_intervals()
        self.rep_cache: dict[str, str] = {}
        self.draw_cache: dict[str, str] = {}
        self.prod_cache: dict[str, list[str]] = {}

    # -- which calls are open -------------------------------------------------------

    def _expanded_intervals(self) -> set[str]:
        """Calls that are an expanded call, inside one, or an ancestor of one."""
        opened: set[str] = set()
        for n in self.expand:
            opened.update(self.order[self.pos[n]:self.end[n]])
            opened.update(self.g.ancestors(n))
        return opened

    def is_open(self, n: str) -> bool:
        d = self.g.node(n)
        return bool(d["children"]) and (d["depth"] < self.depth or n in self.expanded_under)

    # -- mapping any call to what is drawn -----------------------------------------------

    def rep(self, n: str) -> str:
        """The call of the first fold member that stands for `n` (itself when not folded)."""
        if n in self.rep_cache:
            return self.rep_cache[n]
        parent = self.g.node(n)["parent"]
        if parent is None:
            out = n
        else:
            p = self.rep(parent)
            if p != parent:  # `n` sits inside a non-first member: follow the same child index
                index = self.g.children(parent).index(n)
                kids = self.g.children(p)
                out = kids[index] if index < len(kids) else p
            else:
                out = n
            fold = self.folds.get(out)
            if fold is not None:
                out = fold.first
        self.rep_cache[n] = out
        return out

    def drawn(self, n: str) -> str:
        """The drawn box or cluster of call `n`: its topmost closed ancestor, after folding."""
        if n in self.draw_cache:
            return self.draw_cache[n]
        r = self.rep(n)
        chain = [r] + self.g.ancestors(r)
        out = r
        for a in reversed(chain):  # from the root down: the first closed call is drawn
            if not self.is_open(a):
                out = a
                break
        self.draw_cache[n] = out
        return out

    def _inside(self, n: str, ancestor: str) -> bool:
        i = self.pos.get(n)
        return i is not None and self.pos[ancestor] < i < self.end[ancestor]

    def producers(self, n: str, seen: frozenset[str] = frozenset()) -> list[str]:
        """Drawn nodes standing for call/input `n` as the producer of an edge."""
        if n in self.prod_cache:
            return self.prod_cache[n]
        if self.g.node(n)["kind"] != "call":
            return [n]
        d = self.drawn(n)
        if d != self.rep(n) or not self.is_open(d):
            out = [d]
        else:  # a cluster: whatever inside it made what it returned
            sources = self.g.node(n)["returns_from"]
            inner = [s for s in sources if self._inside(s, n)]
            out = []
            for s in inner or sources:
                if s not in seen and s in self.g.graph:
                    out += [p for p in self.producers(s, seen | {n}) if p not in out]
        self.prod_cache[n] = out
        return out

    def consumer(self, n: str) -> str | None:
        """The drawn node receiving an edge into `n`, or None when `n` is drawn as a cluster."""
        if self.g.node(n)["kind"] != "call":
            return n
        d = self.drawn(n)
        return None if d == self.rep(n) and self.is_open(d) else d

    def fold_positions(self, n: str) -> dict[str, int]:
        """For each fold holding `n` (or an ancestor): the member index it lies in."""
        out = {}
        for a in [n] + self.g.ancestors(n):
            f = self.folds.get(a)
            if f is not None:
                out[f.first] = f.members.index(a)
        return out

    # -- assembling ----------------------------------------------------------------------

    def nodes(self) -> dict[str, VisibleNode]:
        calls_per_module: dict[int, int] = {}
        for n in self.order:
            m = self.g.node(n)["module_index"]
            calls_per_module[m] = calls_per_module.get(m, 0) + 1
        out: dict[str, VisibleNode] = {n: VisibleNode(n, "input", None) for n in self.g.inputs()}

        def add(n: str, parent: str | None) -> None:
            d = self.g.node(n)
            fold = self.folds.get(n)
            total = calls_per_module.get(d["module_index"], 1) if d["module_index"] >= 0 else 1
            node = VisibleNode(
                n, "call", parent, is_cluster=self.is_open(n),
                members=fold.members if fold else (),
                call_number=d["call_index"] + 1 if total > 1 else 0, call_total=total,
            )
            out[n] = node
            if node.is_cluster:
                for c in self.g.children(n):
                    f = self.folds.get(c)
                    if f is None or f.first == c:
                        node.children.append(c)
                        add(c, n)

        if self.order:
            add(self.g.root, None)
        out.update({n: VisibleNode(n, "output", None) for n in self.g.outputs()})
        return out

    def _matching_shapes(self, producers: list[str], shapes: list) -> list[str]:
        """Of several producers (a cluster's `returns_from`), those that made an array of
        the edge's shapes; all of them when none did (reshaped on the way out)."""
        if len(producers) < 2 or not shapes:
            return producers
        wanted = {tuple(s) for s in shapes}

        def made(p: str) -> set:
            d = self.g.node(p)
            return {tuple(s) for s in d.get("output_shapes", d.get("shapes", []))}

        hits = [p for p in producers if made(p) & wanted]
        return hits or producers

    def edges(self) -> list[VisibleEdge]:
        found: dict[tuple[str, str], VisibleEdge] = {}
        for src, dst, data in self.g.data_edges():
            c = self.consumer(dst)
            if c is None:
                continue
            if self.g.node(src)["kind"] == "call" and self.g.node(dst)["kind"] == "call":
                pa, pb = self.fold_positions(src), self.fold_positions(dst)
                if any(k in pb and pb[k] != i for k, i in pa.items()):
                    continue  # from one member of a fold to another: the ×N says it
            for p in self._matching_shapes(self.producers(src), data.get("shapes", [])):
                if p == c:
                    continue
                edge = found.get((p, c))
                if edge is None:
                    found[(p, c)] = VisibleEdge(p, c, [], [])
                    edge = found[(p, c)]
                for s, t in zip(data.get("shapes", []), data.get("dtypes", [])):
                    if tuple(s) not in edge.shapes:
                        edge.shapes.append(tuple(s))
                        edge.dtypes.append(t)
        return list(found.values())


def visible_graph(graph: ModelGraph, depth: int = 2, expand: tuple[str, ...] | list[str] = (),
                  fold: bool = True, budget: int = DEFAULT_BUDGET,
                  fold_keys: dict[str, str] | None = None) -> VisibleGraph:
    """The nodes and edges to draw; lowers the depth (with a note) above `budget` nodes.

    `fold_keys` (call id -> key) keeps calls with different keys out of one fold.
    """
    expanded: set[str] = set()
    for path in expand:
        expanded.update(_matching_calls(graph, path))
    on_path = expanded | {a for n in expanded for a in graph.ancestors(n)}
    folds = _split_folds(find_folds(graph), on_path) if fold else {}
    if fold_keys:
        folds = _split_by_key(folds, fold_keys)
    notes: list[str] = []
    deepest = max((graph.node(n)["depth"] for n in graph.calls()), default=0)
    start = int(max(min(depth, deepest), 0))  # also turns depth=math.inf into a number
    d = start
    while True:
        builder = _Builder(graph, d, expanded, folds)
        nodes = builder.nodes()
        if len(nodes) <= budget or (d == 0 and not expanded):
            break
        if d == 0:
            notes.append(f"--expand ignored: the expanded blocks alone exceed {budget} nodes")
            expanded = set()
        else:
            d -= 1
    if d < start:
        asked = f"{start}" if start == depth else f"{depth:g} (calls go {deepest} levels deep)"
        notes.insert(0, f"depth lowered from {asked} to {d} to stay within {budget} drawn nodes; "
                        f"use --expand PATH to open chosen blocks")
    return VisibleGraph(nodes=nodes, edges=builder.edges(), depth=d, notes=notes)
