"""The endpoint host's routing table: weighted picks, mirroring, and authorisation that fails closed."""

from __future__ import annotations

from collections import Counter

import pytest

from mlops_gitops.runtime.serving.config import EndpointConfig
from mlops_gitops.runtime.serving.router import Route


def test_weights_become_cumulative_thresholds_and_zero_weights_get_nothing() -> None:
    route = Route.build(EndpointConfig("ep", traffic={"green": 10, "blue": 90, "red": 0}))
    assert route.thresholds == ((90.0, "blue"), (100.0, "green"))
    assert route.pick(0.0) == "blue" and route.pick(89.999) == "blue" and route.pick(90.0) == "green"
    assert route.pick(99.999) == "green"
    assert route.deployments() == {"blue", "green"}
    picks = Counter(route.pick(i / 10) for i in range(1000))  # an even sweep of [0, 100)
    assert picks == {"blue": 900, "green": 100}


def test_no_live_traffic_picks_nobody() -> None:
    assert Route.build(EndpointConfig("ep", traffic={"blue": 0})).pick(50.0) is None


def test_mirror_goes_to_its_deployment_only() -> None:
    route = Route.build(EndpointConfig("ep", traffic={"blue": 100}, mirror_traffic={"green": 100, "red": 0}))
    assert route.mirror == ("green", 100.0) and route.mirror_to() == "green"
    assert route.deployments() == {"blue", "green"}
    assert Route.build(EndpointConfig("ep", traffic={"blue": 100})).mirror_to() is None


@pytest.mark.parametrize("mode", ["key", "aml_token", "aad_token"])
def test_every_mode_but_none_takes_the_keys_only(mode: str) -> None:
    route = Route.build(EndpointConfig("ep", auth_mode=mode, keys=["k1", "k2", ""]))
    assert route.authorised(b"Bearer k1") and route.authorised(b"Bearer k2")
    assert not route.authorised(b"Bearer k3") and not route.authorised(None) and not route.authorised(b"")
    assert not route.authorised(b"Bearer "), "an empty key is never a key"
    assert not Route.build(EndpointConfig("ep", auth_mode=mode, keys=[])).authorised(b"Bearer ")


def test_auth_mode_none_is_open() -> None:
    assert Route.build(EndpointConfig("ep", auth_mode="none")).authorised(None)
