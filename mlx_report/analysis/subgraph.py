"""One block of a model as a ModelGraph of its own, so it can be drawn in detail on its own page."""

from __future__ import annotations

import copy

import networkx as nx

from ..graph import ModelGraph, Totals


def _subtree(graph: ModelGraph, node_id: str) -> list[str]:
    out = [node_id]
    for child in graph.children(node_id):
        out += _subtree(graph, child)
    return out


def block_graph(graph: ModelGraph, node_id: str) -> ModelGraph:
    """The calls under `node_id` re-rooted at "c0"; arrays crossing its border become inputs/outputs."""
    calls = _subtree(graph, node_id)
    inside = set(calls)
    rename = {node_id: "c0"} if node_id != "c0" else {}
    if "c0" in inside and node_id != "c0":
        raise ValueError("the model root cannot be inside a block")
    base = graph.node(node_id)["depth"]
    g = nx.DiGraph()
    sources: dict[str, str] = {}
    sinks: dict[str, str] = {}
    edges = []
    for u, v, data in graph.data_edges():
        if v in inside and u not in inside:
            if u not in sources:
                sources[u] = f"in:{len(sources)}"
                g.add_node(sources[u], kind="input", name=str(len(sources) - 1),
                           shapes=list(data["shapes"]), dtypes=list(data["dtypes"]),
                           nbytes=0)
            edges.append((sources[u], v, data))
        elif u in inside and v not in inside:
            sinks.setdefault(u, f"out:{len(sinks)}")
            edges.append((u, sinks[u], data))
        elif u in inside and v in inside:
            edges.append((u, v, data))
    for n in calls:
        d = copy.deepcopy(graph.node(n))
        d["depth"] -= base
        if n == node_id:
            d["parent"] = None
        elif d["parent"] in rename:
            d["parent"] = rename[d["parent"]]
        g.add_node(rename.get(n, n), **d)
    for u, out in sinks.items():
        d = graph.node(u)
        g.add_node(out, kind="output", name=out.split(":")[1], shapes=list(d["output_shapes"]),
                   dtypes=list(d["output_dtypes"]), nbytes=d.get("output_bytes", 0))
    for u, v, data in edges:
        g.add_edge(rename.get(u, u), rename.get(v, v), **copy.deepcopy(data))
    root = graph.node(node_id)
    totals = Totals(params=root.get("params", 0), trainable_params=root.get("trainable_params", 0),
                    macs=root.get("macs_total", 0), flops=2 * root.get("macs_total", 0),
                    calls=len(calls), max_depth=max(graph.node(n)["depth"] for n in calls) - base)
    return ModelGraph(graph=g, model_name=root["path"] or graph.model_name, model_type=root["type"],
                      tensors=[], totals=totals, meta={})
