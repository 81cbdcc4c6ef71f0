"""A small DAG with deterministic order and cycle errors that name the loop."""

from __future__ import annotations

import graphlib
from collections.abc import Hashable, Iterable
from typing import Generic, TypeVar

N = TypeVar("N", bound=Hashable)


class CycleError(ValueError):
    def __init__(self, cycle: list[object]) -> None:
        super().__init__(" -> ".join(str(n) for n in cycle))
        self.cycle = cycle


class Graph(Generic[N]):
    def __init__(self) -> None:
        self._deps: dict[N, set[N]] = {}

    def add(self, node: N, depends_on: Iterable[N] = ()) -> None:
        self._deps.setdefault(node, set()).update(depends_on)
        for dep in depends_on:
            self._deps.setdefault(dep, set())

    def __contains__(self, node: object) -> bool:
        return node in self._deps

    def nodes(self) -> list[N]:
        return list(self._deps)

    def dependencies(self, node: N) -> set[N]:
        return set(self._deps.get(node, ()))

    def dependents(self, node: N) -> set[N]:
        return {n for n, deps in self._deps.items() if node in deps}

    def transitive_dependents(self, node: N) -> set[N]:
        out: set[N] = set()
        stack = [node]
        while stack:
            cur = stack.pop()
            for n in self.dependents(cur):
                if n not in out:
                    out.add(n)
                    stack.append(n)
        return out

    def sorter(self) -> graphlib.TopologicalSorter[N]:
        ts: graphlib.TopologicalSorter[N] = graphlib.TopologicalSorter(self._deps)
        try:
            ts.prepare()
        except graphlib.CycleError as exc:
            raise CycleError(list(exc.args[1])) from None
        return ts

    def order(self, key: object = None) -> list[N]:
        """Topological order; ties broken by the node's sort key so output is stable."""
        ts = self.sorter()
        out: list[N] = []
        while ts.is_active():
            ready = sorted(ts.get_ready(), key=key if callable(key) else repr)
            out.extend(ready)
            ts.done(*ready)
        return out
