"""A small DAG with deterministic order and cycle errors that name the loop."""

from __future__ import annotations

import graphlib
from collections import deque
from collections.abc import Callable, Hashable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any, Generic, TypeVar

N = TypeVar("N", bound=Hashable)
R = TypeVar("R")


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


def run_dag(graph: Graph[N], work: Callable[[N], R], settle: Callable[[N, R | None, BaseException | None], bool],
            *, skip: Callable[[N], None], admit: Callable[[N], bool] = lambda _n: True, parallelism: int = 4,
            key: Callable[[N], Any] = repr) -> None:
    """Run `work` on each node once its dependencies have settled; independent nodes in parallel.

    `settle(node, value, error)` records a finished node and says whether it succeeded. A node below an
    unsuccessful one is not run: it goes to `skip` and counts as unsuccessful itself. `admit(node)` may
    refuse a node that is ready (a cancelled run): it records why and the node counts as unsuccessful.
    At most `parallelism` nodes are in flight, taken in the order of `key` among those ready.
    """
    sorter = graph.sorter()
    unsuccessful: set[N] = set()
    limit = max(1, parallelism)
    ready: deque[N] = deque()
    with ThreadPoolExecutor(max_workers=limit) as pool:
        running: dict[Future[R], N] = {}
        while sorter.is_active():
            ready.extend(sorted(sorter.get_ready(), key=key))
            while ready and len(running) < limit:  # at most `limit` in flight: wait() stays cheap
                node = ready.popleft()
                if graph.dependencies(node) & unsuccessful:
                    skip(node)
                    unsuccessful.add(node)
                    sorter.done(node)
                elif not admit(node):
                    unsuccessful.add(node)
                    sorter.done(node)
                else:
                    running[pool.submit(work, node)] = node
            if not running:
                continue
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for fut in finished:
                node = running.pop(fut)
                exc = fut.exception()
                if not settle(node, None if exc is not None else fut.result(), exc):
                    unsuccessful.add(node)
                sorter.done(node)
