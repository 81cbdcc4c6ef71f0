"""The DAG helper that the apply executor and the pipeline runner share."""

from __future__ import annotations

import threading

import pytest

from mlops_gitops.graph import CycleError, Graph, run_dag


def diamond() -> Graph[str]:
    g: Graph[str] = Graph()
    g.add("a")
    g.add("b", ["a"])
    g.add("c", ["a"])
    g.add("d", ["b", "c"])
    g.add("e")
    return g


def test_order_is_topological_and_stable() -> None:
    assert diamond().order() == ["a", "e", "b", "c", "d"]


def test_cycle_names_the_loop() -> None:
    g: Graph[str] = Graph()
    g.add("x", ["y"])
    g.add("y", ["x"])
    with pytest.raises(CycleError) as err:
        g.order()
    assert set(err.value.cycle) == {"x", "y"}


def test_run_dag_runs_each_node_after_its_dependencies() -> None:
    done: list[str] = []
    lock = threading.Lock()

    def settle(node: str, value: str | None, exc: BaseException | None) -> bool:
        with lock:
            done.append(node)
        return exc is None and value == node.upper()

    run_dag(diamond(), str.upper, settle, skip=lambda n: pytest.fail(f"{n} skipped"), parallelism=3)
    assert sorted(done) == ["a", "b", "c", "d", "e"]
    assert done.index("a") < done.index("b") < done.index("d")
    assert done.index("c") < done.index("d")


def test_a_failure_skips_only_what_depends_on_it() -> None:
    skipped: list[str] = []
    failed: list[str] = []

    def work(node: str) -> str:
        if node == "b":
            raise RuntimeError("boom")
        return node

    def settle(node: str, _value: str | None, exc: BaseException | None) -> bool:
        if exc is not None:
            failed.append(f"{node}: {exc}")
        return exc is None

    run_dag(diamond(), work, settle, skip=skipped.append)
    assert failed == ["b: boom"]
    assert skipped == ["d"]  # c and e ran; d reads b


def test_a_refused_node_counts_as_unsuccessful() -> None:
    ran: list[str] = []
    skipped: list[str] = []

    def work(node: str) -> None:
        ran.append(node)

    run_dag(diamond(), work, lambda *_: True, skip=skipped.append, admit=lambda n: n != "a", parallelism=1)
    assert ran == ["e"]
    assert skipped == ["b", "c", "d"]


def test_parallelism_bounds_what_is_in_flight() -> None:
    g: Graph[int] = Graph()
    for i in range(12):
        g.add(i)
    state = {"now": 0, "peak": 0}
    lock = threading.Lock()
    gate = threading.Barrier(2)

    def work(_node: int) -> None:
        with lock:
            state["now"] += 1
            state["peak"] = max(state["peak"], state["now"])
        gate.wait(timeout=5)  # two at a time must be able to meet here
        with lock:
            state["now"] -= 1

    run_dag(g, work, lambda *_: True, skip=lambda _n: None, parallelism=2)
    assert state["peak"] == 2
