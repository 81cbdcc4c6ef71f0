"""The kind registry: every resource kind and the traits that plan, validate and the backends act on.

One entry per kind, every trait spelled out, so that a new kind is one entry here (tests/test_kinds_registry.py
checks that each kind has each trait) instead of a set in every module that cares.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass


class Kind(enum.StrEnum):
    # Declaration order is the order of otherwise independent actions (DESIGN.md §5: data/environment →
    # component → pipeline → model → deployment → endpoint traffic); `Traits.rank` records it.
    DATA = "data"
    ENVIRONMENT = "environment"
    COMPONENT = "component"
    MODEL = "model"
    JOB = "job"
    ONLINE_ENDPOINT = "online-endpoint"
    ONLINE_DEPLOYMENT = "online-deployment"
    TRAFFIC = "traffic"
    BATCH_ENDPOINT = "batch-endpoint"
    BATCH_DEPLOYMENT = "batch-deployment"
    SCHEDULE = "schedule"


@dataclass(frozen=True)
class NameRule:
    """Azure ML's character and length rule for a `name:`. Names reach the filesystem (run and log
    folders), so no rule admits '/', '\\' or '..'."""

    pattern: re.Pattern[str]
    shortest: int
    longest: int
    description: str

    def accepts(self, value: str) -> bool:
        return self.shortest <= len(value) <= self.longest and self.pattern.fullmatch(value) is not None


ENDPOINT_NAME = NameRule(re.compile(r"[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?"), 3, 32,
                         "3-32 characters: letters, digits and '-', starting with a letter, not ending with '-'")
COMPONENT_NAME = NameRule(re.compile(r"[a-z][a-z0-9_]*"), 1, 255,
                          "up to 255 characters: lowercase letters, digits and '_', starting with a letter")
ASSET_NAME = NameRule(re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*"), 1, 255,
                      "up to 255 characters: letters, digits, '_', '.' and '-', starting with a letter or digit")
JOB_NAME = NameRule(re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_-]*"), 1, 255,
                    "up to 255 characters: letters, digits, '_' and '-', starting with a letter or digit")
VERSION = NameRule(re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*"), 1, 64,
                   "up to 64 characters: letters, digits, '_', '.' and '-', starting with a letter or digit")
# Pipeline steps: azure-ai-ml's is_valid_node_name (a lowercase Python identifier).
STEP_NAME = NameRule(re.compile(r"[a-z_][a-z0-9_]*"), 1, 255,
                     "up to 255 characters: lowercase letters, digits and '_', starting with a letter or '_'")
# Inputs and outputs: azure-ai-ml's IOConstants.VALID_KEY_PATTERN.
PORT_NAME = NameRule(re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*"), 1, 255,
                     "up to 255 characters: letters, digits and '_', starting with a letter or '_'")


@dataclass(frozen=True)
class Traits:
    kind: Kind
    rank: int  # order among independent actions
    versioned: bool  # immutable versions (name:version), archived rather than deleted
    name: NameRule  # what its `name:` must look like
    replace_fields: frozenset[str]  # top-level fields Azure cannot change in place: the plan replaces
    consumer: bool  # may use versioned assets: an asset is removed only after its changes
    links: frozenset[Kind]  # kinds its spec may reference (azureml: ids, files of the tree, job outputs)
    served: bool  # the endpoint host acts on it (loads, routes, drains)


_K = Kind
_ORDER = list(Kind)
_SCHEMA = frozenset({"schema"})


def _t(kind: Kind, *, versioned: bool = False, name: NameRule, replace: frozenset[str] = frozenset(),
       consumer: bool = False, links: tuple[Kind, ...] = (), served: bool = False) -> Traits:
    return Traits(kind, _ORDER.index(kind), versioned, name, replace, consumer, frozenset(links), served)


TRAITS: dict[Kind, Traits] = {t.kind: t for t in (
    _t(_K.DATA, versioned=True, name=ASSET_NAME, links=(_K.JOB,)),
    _t(_K.ENVIRONMENT, versioned=True, name=ASSET_NAME),
    _t(_K.COMPONENT, versioned=True, name=COMPONENT_NAME, consumer=True,
       links=(_K.ENVIRONMENT, _K.COMPONENT, _K.DATA)),
    _t(_K.MODEL, versioned=True, name=ASSET_NAME, links=(_K.JOB,)),
    _t(_K.JOB, name=JOB_NAME, replace=_SCHEMA | {"type"}, consumer=True,
       links=(_K.ENVIRONMENT, _K.COMPONENT, _K.DATA)),
    _t(_K.ONLINE_ENDPOINT, name=ENDPOINT_NAME, replace=_SCHEMA | {"compute"}, served=True),
    _t(_K.ONLINE_DEPLOYMENT, name=ENDPOINT_NAME, replace=_SCHEMA | {"instance_type", "endpoint_name", "type"},
       consumer=True, links=(_K.ONLINE_ENDPOINT, _K.MODEL, _K.ENVIRONMENT), served=True),
    _t(_K.TRAFFIC, name=ENDPOINT_NAME, consumer=True, links=(_K.ONLINE_ENDPOINT, _K.ONLINE_DEPLOYMENT),
       served=True),
    _t(_K.BATCH_ENDPOINT, name=ENDPOINT_NAME, replace=_SCHEMA, consumer=True, links=(_K.BATCH_DEPLOYMENT,)),
    _t(_K.BATCH_DEPLOYMENT, name=ENDPOINT_NAME, replace=_SCHEMA | {"endpoint_name", "type"}, consumer=True,
       links=(_K.BATCH_ENDPOINT, _K.MODEL, _K.ENVIRONMENT, _K.COMPONENT)),
    _t(_K.SCHEDULE, name=ASSET_NAME, consumer=True, links=(_K.JOB, _K.ONLINE_DEPLOYMENT, _K.MODEL)),
)}

VERSIONED = frozenset(k for k, t in TRAITS.items() if t.versioned)
SERVED = frozenset(k for k, t in TRAITS.items() if t.served)
CONSUMERS = frozenset(k for k, t in TRAITS.items() if t.consumer)


def traits(kind: Kind) -> Traits:
    return TRAITS[kind]


def rank(kind: Kind) -> int:
    return TRAITS[kind].rank
