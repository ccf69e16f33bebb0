"""A small generic DAG: topological order, upstream closure and cycle detection with the path."""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from typing import Generic, TypeVar

__all__ = ["DAG", "find_cycle"]

T = TypeVar("T", bound=Hashable)


def find_cycle(edges: Mapping[T, Iterable[T]]) -> list[T] | None:
    """Return one cycle as a list of nodes (without repeating the first), or None.

    ``edges`` maps each node to the nodes it depends on.
    """
    white, grey, black = 0, 1, 2
    colour: dict[T, int] = dict.fromkeys(edges, white)
    stack: list[T] = []

    def visit(node: T) -> list[T] | None:
        colour[node] = grey
        stack.append(node)
        for dep in edges.get(node, ()):
            if colour.get(dep, white) == grey:
                return stack[stack.index(dep) :]
            if colour.get(dep, white) == white and dep in edges:
                found = visit(dep)
                if found:
                    return found
        stack.pop()
        colour[node] = black
        return None

    for node in edges:
        if colour[node] == white:
            found = visit(node)
            if found:
                return found
    return None


class DAG(Generic[T]):
    """Nodes with their upstream dependencies."""

    def __init__(self, edges: Mapping[T, Iterable[T]] | None = None) -> None:
        self._upstream: dict[T, list[T]] = {}
        for node, deps in (edges or {}).items():
            self.add(node, deps)

    def add(self, node: T, upstream: Iterable[T] = ()) -> None:
        """Add ``node`` depending on ``upstream``."""
        self._upstream.setdefault(node, [])
        for dep in upstream:
            if dep not in self._upstream[node]:
                self._upstream[node].append(dep)

    @property
    def nodes(self) -> list[T]:
        """All nodes in insertion order."""
        return list(self._upstream)

    def upstream(self, node: T) -> list[T]:
        """Direct dependencies of ``node``."""
        return list(self._upstream[node])

    def downstream(self, node: T) -> list[T]:
        """Nodes that depend directly on ``node``."""
        return [n for n, deps in self._upstream.items() if node in deps]

    def ancestors(self, node: T) -> set[T]:
        """Every node that ``node`` depends on, transitively."""
        seen: set[T] = set()
        todo = list(self._upstream.get(node, ()))
        while todo:
            dep = todo.pop()
            if dep not in seen:
                seen.add(dep)
                todo.extend(self._upstream.get(dep, ()))
        return seen

    def descendants(self, node: T) -> set[T]:
        """Every node that depends on ``node``, transitively."""
        seen: set[T] = set()
        todo = self.downstream(node)
        while todo:
            n = todo.pop()
            if n not in seen:
                seen.add(n)
                todo.extend(self.downstream(n))
        return seen

    def cycle(self) -> list[T] | None:
        """One cycle, or None when the graph is acyclic."""
        return find_cycle(self._upstream)

    def sorted(self) -> list[T]:
        """Nodes in a topological order, stable with respect to insertion order."""
        order: list[T] = []
        done: set[T] = set()
        pending = list(self._upstream)
        while pending:
            progressed = False
            for node in list(pending):
                if all(dep in done or dep not in self._upstream for dep in self._upstream[node]):
                    order.append(node)
                    done.add(node)
                    pending.remove(node)
                    progressed = True
            if not progressed:
                raise ValueError(f"graph has a cycle: {self.cycle()}")
        return order
