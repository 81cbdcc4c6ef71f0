"""Container image references, by the OCI distribution grammar (github.com/distribution/reference).

An `image:` of the tree ends up in a Dockerfile's FROM line and in Engine API calls, so only what the
grammar admits is accepted: no spaces, no newlines, nothing that could become a second instruction.
"""

from __future__ import annotations

import re

_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[_.]|__|-+)"
_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_DOMAIN_PART = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_PART}(?:\.{_DOMAIN_PART})*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
PATTERN = rf"^(?:{_DOMAIN}/)?{_COMPONENT}(?:/{_COMPONENT})*(?::{_TAG})?(?:@{_DIGEST})?$"
_REFERENCE = re.compile(PATTERN, re.ASCII)
MAX_LENGTH = 255 + 128 + 160  # name, tag and a sha512 digest


def is_image_reference(text: str) -> bool:
    return len(text) <= MAX_LENGTH and _REFERENCE.fullmatch(text) is not None


def check_image_reference(text: str) -> str:
    """The text, or ValueError saying it is not an image reference (for pydantic validators)."""
    if not is_image_reference(text):
        raise ValueError(f"{text!r} is not a container image reference: expected [registry/]name[:tag][@digest] "
                         "in lowercase, without spaces (OCI distribution grammar)")
    return text
