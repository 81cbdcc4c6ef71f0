"""Secrets never reach output: credentials inside URLs, values under secret-looking keys, and masks that
stay comparable (equal values, equal masks) without letting anyone confirm a guess.

Masks are keyed: `(sensitive 1a2b3c4d)` is an HMAC of the value under a key that belongs to the
workspace, so two plans of one workspace show the same mask for the same value, while someone without
the workspace's key cannot test whether a mask hides the value they guess.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from typing import Any

# scheme://user:password@host or scheme://token@host: the userinfo part is a credential
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<user>[^/@\s:?#]*)(?::[^/@\s?#]*)?@")
# query parameters that carry credentials (SAS signatures, tokens, keys)
_QUERY_SECRET = re.compile(
    r"(?P<key>[?&;](?:sig|signature|token|access_token|api[_-]?key|key|password|pwd|secret|code|sv?sig)=)"
    r"(?P<value>[^&#\s\"']+)", re.I)

SECRET_KEY = re.compile(r"(pass(word)?|secret|token|api[_-]?key|access[_-]?key|private[_-]?key|credential|"
                        r"conn(ection)?[_-]?str(ing)?|sas[_-]?token|bearer)", re.I)
# Every value under these keys is a secret whatever its own name: environment variables and secrets.
SECRET_SECTIONS = frozenset({"environment_variables", "secrets", "secret_environment_variables"})


# A userinfo without a password is a user name (postgresql://app@db) unless it looks like a token
_TOKEN = re.compile(r"(ghp_|gho_|ghu_|ghs_|ghr_|github_pat_|glpat-|xox[abpr]-|sk-|AKIA|ya29\.)|[^@]{20,}")


def mask_credentials(text: str) -> str:
    """Hide passwords and tokens inside URLs anywhere in text (also when no key name says so)."""
    def userinfo(m: re.Match[str]) -> str:
        scheme, user = m.group("scheme"), m.group("user")
        if m.group(0)[len(scheme) + len(user)] == ":":  # user:password@
            return f"{scheme}{user}:***@" if user else f"{scheme}***@"
        return f"{scheme}***@" if _TOKEN.match(user) else m.group(0)

    if "://" in text:
        text = _USERINFO.sub(userinfo, text)
    if "=" in text:
        text = _QUERY_SECRET.sub(lambda m: m.group("key") + "***", text)
    return text


def is_secret_path(path: str) -> bool:
    """A dotted key path whose value is a secret: a secret-looking last key, or inside a secret section."""
    parts = path.split(".")
    return bool(SECRET_KEY.search(parts[-1])) or any(p in SECRET_SECTIONS for p in parts[:-1])


class Masker:
    """Masks values with an HMAC under a key of the workspace (none: a key of this process only)."""

    def __init__(self, key: bytes | None = None) -> None:
        self.key = key or hashlib.sha256(repr(id(self)).encode() + b"mlops-gitops-unkeyed").digest()

    def value(self, value: Any) -> str:
        digest = hmac.new(self.key, repr(value).encode(), hashlib.sha256).hexdigest()[:12]
        return f"(sensitive {digest})"

    def field(self, path: str, value: Any) -> Any:
        """One value at a dotted path: masked when the path is secret, credentials cut out of strings."""
        if value is None:
            return None
        if is_secret_path(path):
            return self.value(value)
        if isinstance(value, str):
            return mask_credentials(value)
        return value

    def tree(self, value: Any, path: str = "") -> Any:
        if isinstance(value, dict):
            if path and is_secret_path(path) and value:
                return {k: self.value(v) for k, v in value.items()}
            return {k: self.tree(v, f"{path}.{k}" if path else str(k)) for k, v in value.items()}
        if isinstance(value, list):
            return [self.tree(v, path) for v in value]
        return self.field(path, value)
