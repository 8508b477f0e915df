"""Where the cost is: params and MACs by layer type, along the blocks, activations in call order.

Reads the ModelGraph only. MACs are "self" MACs (work in a call's own code), so
summing them over any set of calls never counts a MAC twice; params are the
module's own parameters, counted at its first call only.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..graph import ModelGraph

CONTAINERS = ("Sequential",)  # calls that only chain their children: looked through for blocks


@dataclass
class TypeCost:
    """One layer type: how many calls, their own params and self MACs."""

    type: str
    calls: int
    params: int
    macs: int


@dataclass
class CallCost:
    """One call with the figures the cost charts and tables show."""

    node_id: str
    path: str
    type: str
    params: int          # subtree params (first call of a module), 0 for a reuse
    macs: int            # MACs of the whole call (self + children)
    macs_self: int
    output_bytes: int
    output_shapes: list[tuple[int, ...]]


def _cost(graph: ModelGraph, node_id: str) -> CallCost:
    d = graph.node(node_id)
    return CallCost(
        node_id=node_id, path=d["path"] or graph.model_name, type=d["type"],
        params=0 if d["call_index"] else d.get("params", 0),
        macs=d.get("macs_total", 0), macs_self=d.get("macs_self", 0),
        output_bytes=d.get("output_bytes", 0),
        output_shapes=[tuple(s) for s in d.get("output_shapes", [])],
    )


def by_type(graph: ModelGraph) -> list[TypeCost]:
    """Own params and self MACs summed per layer type, most MACs first."""
    acc: dict[str, TypeCost] = {}
    for node_id in graph.calls():
        d = graph.node(node_id)
        row = acc.setdefault(d["type"], TypeCost(d["type"], 0, 0, 0))
        row.calls += 1
        row.macs += d.get("macs_self", 0)
        if not d["call_index"]:
            row.params += d.get("params_own", 0)
    rows = [r for r in acc.values() if r.params or r.macs]
    return sorted(rows, key=lambda r: (-r.macs, -r.params, r.type))


def _holds_a_stack(graph: ModelGraph, node_id: str) -> bool:
    """Whether a call's children include repeated blocks: two or more child calls of one
    signature that have children themselves (ViT's Encoder over its 12 EncoderBlocks)."""
    seen: set[str] = set()
    for child in graph.children(node_id):
        d = graph.node(child)
        if d["children"]:
            if d.get("signature") in seen:
                return True
            seen.add(d.get("signature"))
    return False


def blocks(graph: ModelGraph) -> list[CallCost]:
    """The model's top-level blocks in call order, looking through Sequential containers
    and other calls that only hold a stack of repeated blocks."""
    if graph.root not in graph.graph:
        return []

    def expand(node_id: str) -> list[str]:
        out = []
        for child in graph.children(node_id):
            d = graph.node(child)
            if (d["children"] and not d.get("macs_self")
                    and (d["type"] in CONTAINERS or _holds_a_stack(graph, child))):
                out += expand(child)
            else:
                out.append(child)
        return out

    ids = expand(graph.root)
    while len(ids) == 1 and graph.children(ids[0]):  # a model that wraps one body
        ids = expand(ids[0])
    return [_cost(graph, n) for n in ids]


def leaves(graph: ModelGraph) -> list[CallCost]:
    """Calls without child calls, in call order: the activation timeline."""
    return [_cost(graph, n) for n in graph.calls() if not graph.children(n)]


def top_calls(graph: ModelGraph, n: int = 10) -> list[CallCost]:
    """The `n` calls with the most self MACs (ties in call order)."""
    calls = [_cost(graph, c) for c in graph.calls()]
    ranked = sorted(enumerate(calls), key=lambda ic: (-ic[1].macs_self, ic[0]))
    return [c for _, c in ranked[:n] if c.macs_self > 0]


def block_of(graph: ModelGraph, block_ids: list[str]) -> dict[str, int]:
    """Map each call to the index of the block (from `blocks`) it runs in."""
    index = {b: i for i, b in enumerate(block_ids)}
    out: dict[str, int] = {}
    for node_id in graph.calls():
        for a in [node_id, *graph.ancestors(node_id)]:
            if a in index:
                out[node_id] = index[a]
                break
    return out
