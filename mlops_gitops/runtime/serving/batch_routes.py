"""Batch endpoints on the endpoint host: Azure's REST invocation (a POST that starts a job and returns it).

Azure routes by host name (`https://<endpoint>.<region>.inference.ml.azure.com/jobs`); locally a client
sends `Host: <endpoint>.localhost:<port>` (which resolves to loopback), or uses the path form
`/batch-endpoints/<endpoint>/jobs`. The host only parses and answers; a workspace host is given a
gateway that checks the endpoint's keys, records the job and starts it (controller/batch_gateway.py).
"""

from __future__ import annotations

from typing import Any, Protocol

from mlops_gitops.runtime.serving.errors import HttpError, bad_request

LOCAL_SUFFIX = ".localhost"


class BatchGateway(Protocol):
    def start(self, endpoint: str, deployment: str | None, authorization: str | None,
              inputs: dict[str, dict[str, str]]) -> tuple[int, dict[str, Any]]: ...

    def job(self, endpoint: str, job_id: str, authorization: str | None) -> tuple[int, dict[str, Any]]: ...


def endpoint_of_host(host: str | None) -> str | None:
    """`cancer-batch.localhost:8080` -> `cancer-batch`; any other Host header -> None."""
    name = (host or "").rsplit(":", 1)[0] if not (host or "").startswith("[") else ""
    if name.endswith(LOCAL_SUFFIX) and len(name) > len(LOCAL_SUFFIX):
        return name[: -len(LOCAL_SUFFIX)]
    return None


def batch_target(method: str, parts: list[str], host: str | None) -> tuple[str, str | None] | None:
    """(endpoint, job ID or None) when the request is a batch call: POST …/jobs or GET …/jobs/<id>."""
    if len(parts) >= 3 and parts[0] == "batch-endpoints" and parts[2] == "jobs":
        endpoint, rest = parts[1], parts[3:]
    elif parts and parts[0] == "jobs" and endpoint_of_host(host) is not None:
        endpoint, rest = str(endpoint_of_host(host)), parts[1:]
    else:
        return None
    if method == "POST" and not rest:
        return endpoint, None
    if method == "GET" and len(rest) == 1:
        return endpoint, rest[0]
    raise HttpError(405 if not rest or len(rest) == 1 else 404, "batch endpoints take POST /jobs and GET /jobs/<id>")


def job_inputs(body: Any) -> dict[str, dict[str, str]]:
    """Azure's `{"properties": {"InputData": {name: {"JobInputType": "UriFolder", "Uri": …}}}}`:
    each input's type and URI (or literal value), keys matched case-insensitively as Azure does."""
    props = _get(body, "properties") if isinstance(body, dict) else None
    data = _get(props, "InputData") if isinstance(props, dict) else None
    if not isinstance(data, dict) or not data:
        raise bad_request("a batch job needs properties.InputData: {NAME: {\"JobInputType\": \"UriFolder\", "
                          "\"Uri\": \"…\"}}")
    out: dict[str, dict[str, str]] = {}
    for name, given in data.items():
        if not isinstance(given, dict):
            raise bad_request(f"InputData.{name} must be an object with JobInputType and Uri (or Value)")
        kind = str(_get(given, "JobInputType") or "UriFolder")
        value = _get(given, "Value") if kind.lower() == "literal" else _get(given, "Uri")
        if not isinstance(value, str | int | float | bool) or value == "":
            raise bad_request(f"InputData.{name} has no {'Value' if kind.lower() == 'literal' else 'Uri'}")
        out[str(name)] = {"type": kind, "value": str(value)}
    return out


def _get(mapping: Any, key: str) -> Any:
    if not isinstance(mapping, dict):
        return None
    return next((v for k, v in mapping.items() if str(k).lower() == key.lower()), None)
