"""Folding of repeated blocks: runs of structurally identical consecutive siblings.

Siblings fold when they are items of one list or Sequential (`layers.0`, `layers.1`),
distinct module objects with the same structural signature and the same input and
output shapes, and follow each other directly. Named attributes (`a`, `b`) never fold.
Two calls of one module object are reuse, never folded.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..graph import ModelGraph


@dataclass(frozen=True)
class Fold:
    """A run of `count` identical sibling calls, represented by `first`."""

    first: str
    members: tuple[str, ...]

    @property
    def count(self) -> int:
        return len(self.members)


def _fold_key(graph: ModelGraph, node_id: str) -> tuple:
    """Equal keys fold: same structure, shapes, and a list-like path (`layers.<i>`)."""
    d = graph.node(node_id)
    prefix, _, index = d["path"].rpartition(".")
    list_like = prefix if index.isdigit() else f"<named {d['path']}>"
    return (list_like, d["signature"], tuple(map(tuple, d["input_shapes"])),
            tuple(map(tuple, d["output_shapes"])))


def find_folds(graph: ModelGraph, min_count: int = 2) -> dict[str, Fold]:
    """Map each member of a foldable run to its Fold (the first member included)."""
    folds: dict[str, Fold] = {}
    for node_id in graph.calls():
        children = graph.children(node_id)
        i = 0
        while i < len(children):
            j = i + 1
            key = _fold_key(graph, children[i])
            modules = {graph.node(children[i])["module_index"]}
            while j < len(children) and _fold_key(graph, children[j]) == key:
                module = graph.node(children[j])["module_index"]
                if module in modules or module < 0:
                    break
                modules.add(module)
                j += 1
            if j - i >= min_count and graph.node(children[i])["module_index"] >= 0:
                fold = Fold(children[i], tuple(children[i:j]))
                for member in fold.members:
                    folds[member] = fold
            i = j
    return folds
