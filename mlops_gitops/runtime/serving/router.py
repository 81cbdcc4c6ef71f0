"""Routing tables: an endpoint's traffic split as cumulative weights, swapped whole on every change."""

from __future__ import annotations

import hmac
import random
from dataclasses import dataclass

from mlops_gitops.runtime.serving.config import EndpointConfig


@dataclass(frozen=True)
class Route:
    name: str
    auth_mode: str
    keys: tuple[bytes, ...]
    thresholds: tuple[tuple[float, str], ...]  # cumulative percentages -> deployment
    mirror: tuple[str, float] | None

    @classmethod
    def build(cls, cfg: EndpointConfig) -> Route:
        total = 0.0
        thresholds = []
        for dep, weight in sorted(cfg.traffic.items()):
            if weight > 0:
                total += weight
                thresholds.append((total, dep))
        mirror = next(((d, float(p)) for d, p in cfg.mirror_traffic.items() if p > 0), None)
        keys = tuple(("Bearer " + k).encode() for k in cfg.keys if k)
        return cls(cfg.name, cfg.auth_mode, keys, tuple(thresholds), mirror)

    def pick(self, rnd: float) -> str | None:
        """The deployment for a draw in [0, 100); None when the endpoint has no live traffic."""
        for limit, dep in self.thresholds:
            if rnd < limit:
                return dep
        return self.thresholds[-1][1] if self.thresholds else None

    def choose(self) -> str | None:
        return self.pick(random.random() * 100.0)

    def mirror_to(self) -> str | None:
        if self.mirror is not None and random.random() * 100.0 < self.mirror[1]:
            return self.mirror[0]
        return None

    def authorised(self, header: bytes | None) -> bool:
        """Fail closed: `none` (an image run without keys) is open; every other mode — key, and aml_token or
        aad_token, which need Azure's identity platform and cannot be checked here — takes the keys only."""
        if self.auth_mode == "none":
            return True
        if not header or not self.keys:
            return False
        return any(hmac.compare_digest(header, key) for key in self.keys)

    def deployments(self) -> set[str]:
        out = {d for _, d in self.thresholds}
        if self.mirror:
            out.add(self.mirror[0])
        return out
