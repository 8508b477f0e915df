"""Per-call rows for tables: one LayerInfo per module call, in call order."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from ..graph import ModelGraph, Shape


@dataclass
class LayerInfo:
    """What a summary row knows about one module call."""

    node_id: str
    path: str
    type: str
    call_index: int
    depth: int
    parent: str | None
    children: list[str]
    input_shapes: list[Shape]
    input_dtypes: list[str]
    output_shapes: list[Shape]
    output_dtypes: list[str]
    params: int                 # unique params of the module's subtree
    params_own: int             # params held by the module itself
    trainable_params: int
    param_bytes: int
    macs_self: int
    macs_total: int
    elementwise_flops_self: int
    elementwise_flops_total: int
    output_bytes: int
    config: str
    signature: str
    reused: bool                # a later call of a module already called
    uncounted: dict[str, int] = field(default_factory=dict)
    error: str | None = None

    @property
    def is_leaf(self) -> bool:
        return not self.children

    def to_dict(self) -> dict:
        return asdict(self)


def build_layers(graph: ModelGraph) -> list[LayerInfo]:
    """LayerInfo for every call node, in the order the calls started."""
    layers = []
    for node_id in graph.calls():
        d = graph.node(node_id)
        layers.append(LayerInfo(
            node_id=node_id, path=d["path"], type=d["type"], call_index=d["call_index"],
            depth=d["depth"], parent=d["parent"], children=list(d["children"]),
            input_shapes=[tuple(s) for s in d["input_shapes"]], input_dtypes=list(d["input_dtypes"]),
            output_shapes=[tuple(s) for s in d["output_shapes"]], output_dtypes=list(d["output_dtypes"]),
            params=d.get("params", 0), params_own=d.get("params_own", 0),
            trainable_params=d.get("trainable_params", 0), param_bytes=d.get("param_bytes", 0),
            macs_self=d.get("macs_self", 0), macs_total=d.get("macs_total", 0),
            elementwise_flops_self=d.get("elementwise_flops_self", 0),
            elementwise_flops_total=d.get("elementwise_flops_total", 0),
            output_bytes=d["output_bytes"], config=d.get("config", ""),
            signature=d.get("signature", ""), reused=d["call_index"] > 0,
            uncounted=dict(d.get("uncounted", {})), error=d.get("error"),
        ))
    return layers
