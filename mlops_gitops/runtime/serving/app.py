"""The endpoint host's ASGI application: scoring, Open Inference Protocol, health, metrics, admin.

A plain ASGI callable rather than a framework: the scoring path is a handful of dict lookups, so the
host stays close to what uvicorn can do with onnxruntime alone.
"""

from __future__ import annotations

import asyncio
import hmac
import itertools
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from mlops_gitops.runtime.serving import binary
from mlops_gitops.runtime.serving.batch_routes import BatchGateway, batch_target, endpoint_of_host, job_inputs
from mlops_gitops.runtime.serving.collector import DeploymentCollector
from mlops_gitops.runtime.serving.config import DeploymentConfig, EndpointConfig, ServingConfig
from mlops_gitops.runtime.serving.errors import HttpError, bad_request
from mlops_gitops.runtime.serving.host_state import HostState, LiveDeployment
from mlops_gitops.runtime.serving.router import Route

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

log = logging.getLogger("mlops_gitops.host")
JSON_HEADERS = [(b"content-type", b"application/json")]
PIN_HEADER = b"azureml-model-deployment"


def _json(data: Any) -> bytes:
    return orjson.dumps(data, option=orjson.OPT_SERIALIZE_NUMPY)


def _model_config(name: str, meta: dict[str, Any]) -> dict[str, Any]:
    """Triton's model configuration (`/v2/models/<name>/config`) from the model's metadata."""
    def port(p: dict[str, Any]) -> dict[str, Any]:
        datatype = "STRING" if p.get("datatype") == "BYTES" else str(p.get("datatype"))
        return {"name": p["name"], "data_type": f"TYPE_{datatype}", "dims": p.get("shape", [])}

    return {"name": name, "platform": meta.get("platform", ""),
            "backend": "onnxruntime" if meta.get("platform") == "onnxruntime_onnx" else "python",
            "max_batch_size": 0, "input": [port(p) for p in meta.get("inputs", [])],
            "output": [port(p) for p in meta.get("outputs", [])]}


def _answer_headers(deployment: str, head_length: int | None) -> list[tuple[bytes, bytes]]:
    if head_length is None:
        return [*JSON_HEADERS, (PIN_HEADER, deployment.encode())]
    # outputs sent as binary after the JSON head (the V2 binary tensor data extension)
    return [(b"content-type", b"application/octet-stream"), (PIN_HEADER, deployment.encode()),
            (binary.HEADER, str(head_length).encode())]


async def _respond(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers or JSON_HEADERS})
    await send({"type": "http.response.body", "body": body})


async def _error(send: Send, status: int, message: str) -> None:
    # After a timed-out body the rest of it may still be on its way: the connection cannot be reused
    headers = [*JSON_HEADERS, (b"connection", b"close")] if status == 408 else None
    await _respond(send, status, _json({"error": message}), headers)


async def _read_body(receive: Receive, limit: int) -> bytes:
    chunks = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise HttpError(499, "client disconnected")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise HttpError(413, f"request body over the limit of {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


def _header(scope: Scope, name: bytes) -> bytes | None:
    return next((v for k, v in scope["headers"] if k == name), None)


def _parse(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise bad_request(f"the request body is not valid JSON: {exc}") from None


_REQUEST_IDS = itertools.count()
_ID_PREFIX = uuid.uuid4().hex[:12]  # this host process's; a counter after it keeps IDs unique and cheap


def _sample(collect: DeploymentCollector | None, scope: Scope, body: bytes,
            json_length: bytes | None) -> tuple[DeploymentCollector, float, str] | None:
    """A request the deployment's data collector samples: its bodies kept as they are (the converter parses
    them), under the caller's x-request-id or a new correlation ID."""
    draw = collect.draw() if collect is not None else None
    if collect is None or draw is None:
        return None
    cid = (_header(scope, b"x-request-id") or b"").decode("latin-1")[:128] or f"{_ID_PREFIX}-{next(_REQUEST_IDS)}"
    head = binary.split(body, json_length)[0]
    when = time.time()
    collect.add("request", draw, cid, head, when)
    collect.add("model_inputs", draw, cid, head, when)
    return collect, draw, cid


class HostApp:
    def __init__(self, state: HostState, admin_token: str, on_started: Callable[[], None] | None = None,
                 initial: ServingConfig | None = None, metrics_key: str | None = None,
                 body_timeout_s: float = 30.0, batch: BatchGateway | None = None,
                 endpoint_ports: dict[int, str] | None = None) -> None:
        self.body_timeout_s = body_timeout_s
        self.endpoint_ports = endpoint_ports or {}  # a port of its own per endpoint (Triton's clients)
        self.batch = batch  # a workspace's host starts batch jobs; an image's host has none
        self.state = state
        self.admin_token = admin_token.encode()
        self.metrics_key = ("Bearer " + metrics_key).encode() if metrics_key else None
        self.on_started = on_started
        self.initial = initial
        self.tasks: set[asyncio.Task[None]] = set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            try:
                await self._http(scope, receive, send)
            except HttpError as exc:
                await _error(send, exc.status, exc.message)
            except Exception:  # a bug in the host: logged with its traceback, answered without one
                log.exception("internal error on %s %s", scope.get("method"), scope.get("path"))
                await _error(send, 500, "internal error in the endpoint host (see its log)")
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                if self.initial is not None:
                    await self.state.load(self.initial)
                if self.on_started is not None:
                    self.on_started()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.state.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        method: str = scope["method"]
        parts = path.strip("/").split("/")
        head = parts[0]  # the scoring path (endpoints/<name>/score) looks at no header here
        target = (batch_target(method, parts, (_header(scope, b"host") or b"").decode("latin-1"))
                  if head in ("jobs", "batch-endpoints") else None)
        routed = self._routed_endpoint(scope) if head == "v2" else None
        if target is not None:
            await self._batch(*target, scope, receive, send)
        elif routed is not None and parts[:2] == ["v2", "models"] and len(parts) in (3, 4):
            # the endpoint by its port or host name: model names are the repository's (Triton's routes)
            if method == "POST" and len(parts) == 4 and parts[3] == "infer":
                await self._score(routed, scope, receive, send, v2=True, model=parts[2])
            elif method == "GET" and (len(parts) == 3 or parts[3] in ("ready", "config")):
                await self._describe(routed, parts[2], parts[3] if len(parts) == 4 else None, scope, send)
            else:
                raise HttpError(404, f"no route for {method} {path}")
        elif routed is not None and method == "POST" and parts == ["v2", "repository", "index"]:
            await self._index(routed, scope, send)
        elif method == "POST" and len(parts) == 3 and parts[0] == "endpoints" and parts[2] == "score":
            await self._score(parts[1], scope, receive, send, v2=False)
        elif method == "POST" and len(parts) == 4 and parts[:2] == ["v2", "models"] and parts[3] == "infer":
            await self._score(parts[2], scope, receive, send, v2=True)
        elif parts[0] == "-" and len(parts) >= 2 and parts[1] == "admin":
            await self._admin(method, parts[2:], scope, receive, send)
        elif method == "GET":
            await self._get(parts, scope, send)
        else:
            raise HttpError(404, f"no route for {method} {path}")

    # -- batch endpoints ----------------------------------------------------------------------

    async def _batch(self, endpoint: str, job_id: str | None, scope: Scope, receive: Receive, send: Send) -> None:
        if self.batch is None:
            raise HttpError(404, "this endpoint host runs no batch jobs (only a workspace's host does)")
        auth = (_header(scope, b"authorization") or b"").decode("latin-1") or None
        if job_id is None:
            inputs = job_inputs(_parse(await _read_body(receive, 1024 * 1024)))
            pinned = (_header(scope, PIN_HEADER) or b"").decode("latin-1") or None
            status, answer = await asyncio.to_thread(self.batch.start, endpoint, pinned, auth, inputs)
        else:
            status, answer = await asyncio.to_thread(self.batch.job, endpoint, job_id, auth)
        if status >= 400:
            raise HttpError(status, str(answer.get("message") or answer))
        await _respond(send, status, _json(answer))

    # -- scoring -------------------------------------------------------------------------------

    def _routed_endpoint(self, scope: Scope) -> str | None:
        """The endpoint a request names by where it arrived: a port of its own, or `<endpoint>.localhost`."""
        server = scope.get("server")
        if server and self.endpoint_ports.get(server[1]):
            return self.endpoint_ports[server[1]]
        name = endpoint_of_host((_header(scope, b"host") or b"").decode("latin-1"))
        return name if name is not None and name in self.state.routes else None

    def _chosen(self, endpoint: str, scope: Scope) -> LiveDeployment | None:
        """The deployment a metadata call describes: the pinned one, else the one with the most traffic (None:
        the endpoint has none to describe)."""
        state = self.state
        route = state.routes.get(endpoint)
        if route is None:
            raise HttpError(404, f"unknown endpoint '{endpoint}'")
        if not route.authorised(_header(scope, b"authorization")):  # the model's metadata: the endpoint's auth
            raise HttpError(401, "missing or wrong key: send 'Authorization: Bearer <key>'")
        pinned = next((v.decode() for k, v in scope["headers"] if k == PIN_HEADER), None)
        dep = pinned or max(state.config.endpoints[endpoint].traffic.items(), key=lambda kv: kv[1],
                            default=(None, 0))[0]
        return state.deployments.get(f"{endpoint}/{dep}") if dep else None

    async def _index(self, endpoint: str, scope: Scope, send: Send) -> None:
        live = self._chosen(endpoint, scope)
        if live is None:
            raise HttpError(404, f"endpoint '{endpoint}' has no deployment to describe")
        runner = live.runner
        models = runner.index() if runner.kind == "triton" else [{"name": endpoint, "state": "READY"}]
        await _respond(send, 200, _json(models))

    async def _score(self, endpoint: str, scope: Scope, receive: Receive, send: Send, v2: bool,
                     model: str | None = None) -> None:
        state = self.state
        route = state.routes.get(endpoint)
        if route is None:
            raise HttpError(404, f"unknown endpoint '{endpoint}'")
        auth = pinned = json_length = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                auth = value
            elif name == PIN_HEADER:
                pinned = value.decode("latin-1")
            elif name == binary.HEADER:
                json_length = value
        if not route.authorised(auth):
            raise HttpError(401, "missing or wrong key: send 'Authorization: Bearer <key>' "
                                 "(mlops-gitops endpoint get-credentials)")
        dep = pinned or route.choose()
        if dep is None:
            raise HttpError(503, f"endpoint '{endpoint}' has no traffic: set traffic, or name a deployment "
                                 "in the azureml-model-deployment header")
        live = state.deployments.get(f"{endpoint}/{dep}")
        if live is None:
            raise HttpError(404, f"unknown deployment '{dep}' of endpoint '{endpoint}'")
        cfg = live.cfg
        # The body first, under its own deadline: a client that sends it slowly holds no slot of the deployment
        try:
            async with asyncio.timeout(self.body_timeout_s):
                body = await _read_body(receive, cfg.max_body_bytes)
        except TimeoutError:
            raise HttpError(408, f"the request body did not arrive within {self.body_timeout_s:g} s") from None
        if live.inflight >= cfg.max_concurrency:
            state.metrics.observe(endpoint, dep, 429, 0.0)
            raise HttpError(429, f"deployment '{dep}' is busy: {cfg.max_concurrency} concurrent request(s) is its "
                                 "limit (request_settings.max_concurrent_requests_per_instance x instance_count)")
        start = time.perf_counter()
        live.inflight += 1
        status = 500
        sampled = _sample(live.collect, scope, body, json_length)
        try:
            payload, head_length = await self._run_limited(live, body, v2, json_length, model)
            status = 200
            headers = _answer_headers(dep, head_length)
            self._collect_answer(sampled, payload, head_length, headers)
            await _respond(send, 200, payload, headers)
        except HttpError as exc:
            status = exc.status
            raise
        finally:
            live.inflight -= 1
            live.served += 1
            if not live.inflight:
                live.drained.set()
            state.metrics.observe(endpoint, dep, status, time.perf_counter() - start)
        if pinned is None and route.mirror is not None:
            self._maybe_mirror(route, body, v2, json_length, model)

    async def _run_limited(self, live: LiveDeployment, body: bytes, v2: bool,
                           json_length: bytes | None = None, model: str | None = None) -> tuple[bytes, int | None]:
        if live.runner.kind in ("onnx", "triton"):  # in-process and short: no timer task per request
            return await self._run(live, body, v2, json_length, model)
        timeout_ms = live.cfg.request_timeout_ms
        try:
            return await asyncio.wait_for(self._run(live, body, v2, json_length, model), timeout_ms / 1000)
        except TimeoutError:
            raise HttpError(504, f"deployment '{live.cfg.name}' did not answer within request_timeout_ms "
                                 f"({timeout_ms} ms)") from None

    def _collect_answer(self, sampled: tuple[DeploymentCollector, float, str] | None, payload: bytes,
                        head_length: int | None, headers: list[tuple[bytes, bytes]]) -> None:
        if sampled is None:
            return
        collect, draw, cid = sampled
        answer = payload if head_length is None else payload[:head_length]
        when = time.time()
        collect.add("response", draw, cid, answer, when)
        collect.add("model_outputs", draw, cid, answer, when)
        self.state.collectors.nudge(collect)
        headers.append((b"x-request-id", cid.encode("latin-1")))

    def _maybe_mirror(self, route: Route, body: bytes, v2: bool, json_length: bytes | None = None,
                      model: str | None = None) -> None:
        target = route.mirror_to()
        if target is not None:
            self._spawn(self._mirror(route.name, target, body, v2, json_length, model))

    async def _run(self, live: LiveDeployment, body: bytes, v2: bool,
                   json_length: bytes | None = None, model: str | None = None) -> tuple[bytes, int | None]:
        """The answer's body, and the length of its JSON head when binary outputs follow it."""
        runner = live.runner
        model_name, model_version = live.cfg.endpoint, live.cfg.model_version
        if runner.kind == "triton":  # one model of the repository, by the name Triton's routes give
            if not v2:
                raise bad_request("this deployment is a Triton model repository: call POST /v2/models/<model>/infer "
                                  "on the endpoint's own port or host name (<endpoint>.localhost)")
            picked = runner.model(model or live.cfg.endpoint)
            runner, model_name, model_version = picked.runner, picked.name, picked.version
        if runner.kind in ("container", "custom_container"):
            return await runner.forward(body, v2), None
        if runner.kind == "script":
            if v2:
                raise bad_request("this deployment runs a scoring script: call /endpoints/{name}/score")
            return await runner.score(body), None
        if not v2:
            outputs = await runner.run(runner.feeds_from_azure(_parse(body)))
            return _json(runner.azure_response(outputs)), None
        head, tail = binary.split(body, json_length)
        request = _parse(head)
        if tail and isinstance(request, dict):
            binary.attach(request, tail)
        feeds = runner.feeds_from_v2(request)
        outputs = await runner.run(feeds)
        wanted = [o.get("name") for o in request.get("outputs") or [] if isinstance(o, dict)]
        answers = runner.v2_outputs(outputs, wanted)
        default, own = binary.wanted_binary(request)
        raws = [binary.encode(o) for o in answers if own.get(o["name"], default)]
        response = _json({"model_name": model_name, "model_version": model_version,
                          "id": request.get("id", ""), "outputs": answers})
        return (response + b"".join(raws), len(response)) if raws else (response, None)

    async def _mirror(self, endpoint: str, dep: str, body: bytes, v2: bool, json_length: bytes | None = None,
                      model: str | None = None) -> None:
        live = self.state.deployments.get(f"{endpoint}/{dep}")
        if live is None or live.inflight >= live.cfg.max_concurrency:
            return  # a shadow copy never queues behind live traffic
        live.inflight += 1
        code = 200
        try:
            await asyncio.wait_for(self._run(live, body, v2, json_length, model), live.cfg.request_timeout_ms / 1000)
        except HttpError as exc:
            code = exc.status
        except Exception:  # the answer is discarded either way; the failure is counted
            code = 500
        finally:
            live.inflight -= 1
            if not live.inflight:
                live.drained.set()
            self.state.metrics.mirrored.labels(endpoint, dep, str(code)).inc()

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    # -- reading -------------------------------------------------------------------------------

    async def _get(self, parts: list[str], scope: Scope, send: Send) -> None:
        state = self.state
        if parts == ["v2", "health", "live"]:
            await _respond(send, 200, _json({"live": True}))
        elif parts == ["v2", "health", "ready"]:
            await _respond(send, 200, _json({"ready": True}))
        elif parts == ["metrics"]:
            self._metrics_authorised(scope)
            await _respond(send, 200, state.metrics.render(), [(b"content-type", b"text/plain; version=0.0.4")])
        elif parts == ["v2"]:
            from mlops_gitops import __version__

            await _respond(send, 200, _json({"name": "mlops-gitops", "version": __version__,
                                             "extensions": ["binary_tensor_data"]}))
        elif len(parts) in (3, 4) and parts[:2] == ["v2", "models"] and (len(parts) == 3 or
                                                                         parts[3] in ("ready", "config")):
            await self._describe(parts[2], parts[2], parts[3] if len(parts) == 4 else None, scope, send)
        else:
            raise HttpError(404, f"no route for GET /{'/'.join(parts)}")

    async def _describe(self, endpoint: str, model: str, what: str | None, scope: Scope, send: Send) -> None:
        """GET /v2/models/<model>[/ready|/config] of an endpoint (its model is the endpoint's own name, or one of
        a Triton repository's)."""
        live = self._chosen(endpoint, scope)
        if live is None and what == "ready":  # no deployment yet: not ready, as before any deployment loads
            await _respond(send, 200, _json({"name": model, "ready": False}))
            return
        if live is None:
            raise HttpError(404, f"endpoint '{endpoint}' has no deployment to describe")
        runner: Any = live.runner
        version = live.cfg.model_version
        if runner.kind == "triton":
            found = runner.models.get(model)
            if what == "ready":  # as Triton answers it: 200 when ready, 400 when not
                ready = found is not None and found.ready
                await _respond(send, 200 if ready else 400, _json({"name": model, "ready": ready}))
                return
            picked = runner.model(model)
            runner, version = picked.runner, picked.version
        elif what == "ready":
            await _respond(send, 200, _json({"name": model, "ready": True}))
            return
        meta = runner.metadata() if hasattr(runner, "metadata") else {"platform": "scoring_script"}
        if what == "config":  # the model configuration Triton's clients ask for
            await _respond(send, 200, _json(_model_config(model, meta)))
            return
        await _respond(send, 200, _json({"name": model, "deployment": live.cfg.name,
                                         "versions": [version] if version else [], **meta}))

    def _metrics_authorised(self, scope: Scope) -> None:
        """Metrics name endpoints, deployments and traffic: they take the workspace's metrics key. Without one
        configured they are open only where every endpoint is (an image run without keys)."""
        header = _header(scope, b"authorization")
        if self.metrics_key is not None:
            if header is not None and hmac.compare_digest(header, self.metrics_key):
                return
        elif all(route.auth_mode == "none" for route in self.state.routes.values()):
            return
        raise HttpError(401, "metrics need the workspace's metrics key: send 'Authorization: Bearer <key>' "
                             "(mlops-gitops endpoint get-credentials --metrics; MLOPS_GITOPS_METRICS_KEY in an image)")

    # -- admin (the local backend drives these) ------------------------------------------------

    async def _admin(self, method: str, parts: list[str], scope: Scope, receive: Receive, send: Send) -> None:
        token = next((v for k, v in scope["headers"] if k == b"x-mlops-admin-token"), b"")
        if not hmac.compare_digest(token, self.admin_token):
            raise HttpError(403, "admin calls need the workspace's admin token")
        body: dict[str, Any] = {}
        if method in ("PUT", "POST"):
            parsed = _parse(await _read_body(receive, 16 * 1024 * 1024))
            if not isinstance(parsed, dict):
                raise bad_request("admin calls take a JSON object")
            body = parsed
        state = self.state
        if parts == ["status"] and method == "GET":
            await _respond(send, 200, _json(state.status()))
        elif len(parts) == 3 and parts[0] == "deployments" and method == "PUT":
            await state.put_deployment(DeploymentConfig(**body))
            await _respond(send, 200, _json({"ready": True}))
        elif len(parts) == 3 and parts[0] == "deployments" and method == "DELETE":
            await state.delete_deployment(f"{parts[1]}/{parts[2]}")
            await _respond(send, 200, _json({"deleted": True}))
        elif len(parts) == 2 and parts[0] == "endpoints" and method == "PUT":
            await state.put_endpoint(EndpointConfig(**body))
            await _respond(send, 200, _json({"updated": True}))
        elif len(parts) == 2 and parts[0] == "endpoints" and method == "DELETE":
            await state.delete_endpoint(parts[1])
            await _respond(send, 200, _json({"deleted": True}))
        else:
            raise HttpError(404, f"no admin route {method} /{'/'.join(parts)}")
