"""A compiled pie laid out flat for planning: leaves in one list, each pie a slice of it.

Built once per pie (many accounts share a pie) and cached by identity; the planner then
works on a list of integer cents, one per security slice.
"""

from __future__ import annotations

from rules.model import Pie, Security


class Node:
    """A pie of the tree. Its securities are leaves[lo:hi]; children mix pies and leaves."""

    __slots__ = ("name", "path", "target", "lo", "hi", "children", "targets", "zero", "flat")

    def __init__(self, name: str, path: str, target: int):
        self.name = name
        self.path = path            # "" for the root
        self.target = target
        self.lo = self.hi = 0
        self.children: list[Node | int] = []   # a Node, or the index of a leaf
        self.targets: list[int] = []
        self.zero = False           # this pie, or one above it, is at 0%
        self.flat = False           # only securities: children are leaves lo..hi-1, in order


class Portfolio:
    __slots__ = ("pie", "root", "paths", "symbols", "leaf_index", "pies", "leaf_zero", "zero_leaves")

    def __init__(self, pie: Pie):
        self.pie = pie
        self.paths: list[str] = []
        self.symbols: list[str] = []
        self.leaf_zero: list[bool] = []         # target 0%, itself or through a pie above it
        self.pies: dict[str, Node] = {}
        self.root = self._build(pie, "", 10_000, False)
        self.leaf_index = {p: i for i, p in enumerate(self.paths)}
        self.zero_leaves = [i for i, z in enumerate(self.leaf_zero) if z]

    def _build(self, pie: Pie, path: str, target: int, zero: bool) -> Node:
        node = Node(pie.name, path, target)
        node.zero = zero
        self.pies[path] = node
        node.lo = len(self.paths)
        prefix = f"{path}/" if path else ""
        for s in pie.slices:
            node.targets.append(s.target_bp)
            if isinstance(s, Security):
                node.children.append(len(self.paths))
                self.paths.append(prefix + s.symbol)
                self.symbols.append(s.symbol)
                self.leaf_zero.append(zero or s.target_bp == 0)
            else:
                node.children.append(self._build(s, prefix + s.name, s.target_bp, zero or s.target_bp == 0))
        node.hi = len(self.paths)
        node.flat = all(type(c) is int for c in node.children)
        return node

    def pie_at(self, path: str) -> Node | None:
        return self.pies.get(path.strip("/"))

    def surviving_ancestor(self, path: str) -> Node:
        """The nearest pie above `path` that is still in the tree and not at 0%."""
        parts = path.split("/")[:-1]
        while parts:
            node = self.pies.get("/".join(parts))
            if node is not None and not node.zero:
                return node
            parts.pop()
        return self.root


_CACHE: dict[int, Portfolio] = {}


def portfolio(pie: Pie | Portfolio) -> Portfolio:
    """The flat layout of a pie, built once per pie object."""
    if isinstance(pie, Portfolio):
        return pie
    p = _CACHE.get(id(pie))
    if p is None or p.pie is not pie:
        if len(_CACHE) > 4096:
            _CACHE.clear()
        p = _CACHE[id(pie)] = Portfolio(pie)
    return p
