"""Gitignore-like globs (`**/*.yml`, `src/**`, `data/[ab]?.csv`) matched in linear time.

A regular expression made from a glob backtracks: `include: ["*" * 60]` took minutes per file. Here a
glob is a list of tokens and a path is matched by simulating the pattern as an NFA — the set of
positions reachable after each character — so a match costs at most len(path) times len(pattern) steps,
whatever the pattern.
"""

from __future__ import annotations

from dataclasses import dataclass

# token kinds
_LIT, _ANY, _CLASS, _STAR, _GLOBSTAR, _DIRS = range(6)
_MAX_CACHED = 50_000  # transitions kept per pattern; beyond that, computed each time (still linear)


@dataclass(frozen=True)
class _Token:
    kind: int
    text: str = ""  # _LIT: the character; _CLASS: the set's characters
    negate: bool = False


def _class(pattern: str, i: int) -> tuple[_Token, int] | None:
    """`[abc]`, `[!a-z]`: the token and the index after `]`, or None when unterminated."""
    end = pattern.find("]", i + 2 if pattern[i + 1:i + 2] in ("!", "^") else i + 1)
    if end == -1:
        return None
    body = pattern[i + 1:end]
    negate = body[:1] in ("!", "^")
    body = body[1:] if negate else body
    chars: list[str] = []
    k = 0
    while k < len(body):
        if k + 2 < len(body) and body[k + 1] == "-":
            chars.extend(chr(c) for c in range(ord(body[k]), ord(body[k + 2]) + 1))
            k += 3
        else:
            chars.append(body[k])
            k += 1
    return _Token(_CLASS, "".join(chars), negate), end + 1


def _tokens(pattern: str) -> list[_Token]:
    out: list[_Token] = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            if not (out and out[-1].kind == _DIRS):  # `**/**/` is one `**/`
                out.append(_Token(_DIRS))
            i += 3
        elif pattern.startswith("**", i):
            out.append(_Token(_GLOBSTAR))
            i += 2
        elif pattern[i] == "*":
            if not (out and out[-1].kind == _STAR):  # `***` is one `*`
                out.append(_Token(_STAR))
            i += 1
        elif pattern[i] == "?":
            out.append(_Token(_ANY))
            i += 1
        elif pattern[i] == "[" and (found := _class(pattern, i)) is not None:
            out.append(found[0])
            i = found[1]
        else:
            out.append(_Token(_LIT, pattern[i]))
            i += 1
    return out


class Glob:
    """One pattern over posix paths; `*` and `?` stay within a folder, `**` crosses folders."""

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self.tokens = _tokens(pattern)
        self._start = (frozenset(self._closure({0})), frozenset[int]())
        self._cache: dict[tuple[tuple[frozenset[int], frozenset[int]], str], tuple[frozenset[int], frozenset[int]]] = {}

    def _closure(self, states: set[int]) -> set[int]:
        """Add the positions reachable without reading a character (`*`, `**`, `**/` may match nothing)."""
        stack = list(states)
        while stack:
            s = stack.pop()
            if s < len(self.tokens) and self.tokens[s].kind in (_STAR, _GLOBSTAR, _DIRS) and s + 1 not in states:
                states.add(s + 1)
                stack.append(s + 1)
        return states

    def _step(self, state: int, c: str, nxt: set[int], inside: set[int]) -> None:
        token = self.tokens[state]
        if token.kind == _LIT:
            if c == token.text:
                nxt.add(state + 1)
        elif token.kind == _ANY:
            if c != "/":
                nxt.add(state + 1)
        elif token.kind == _CLASS:
            if c != "/" and (c in token.text) != token.negate:
                nxt.add(state + 1)
        elif token.kind == _STAR:
            if c != "/":
                nxt.add(state)
        elif token.kind == _GLOBSTAR:
            nxt.add(state)
        else:  # _DIRS: any number of whole folders, each ending with '/'
            inside.add(state)
            if c == "/":
                nxt.add(state + 1)

    def _next(self, state: tuple[frozenset[int], frozenset[int]], c: str) -> tuple[frozenset[int], frozenset[int]]:
        states, dirs_inside = state
        nxt: set[int] = set()
        inside: set[int] = set()
        for s in states | dirs_inside:
            if s < len(self.tokens):
                self._step(s, c, nxt, inside)
        return frozenset(self._closure(nxt)), frozenset(inside)

    def match(self, path: str) -> bool:
        # The NFA's state sets are cached as DFA states (built lazily, bounded): after the first few paths a
        # character costs one dict lookup, and a pattern of any shape stays linear in the path's length.
        state = self._start
        cache = self._cache
        for c in path:
            key = (state, c)
            found = cache.get(key)
            if found is None:
                found = self._next(state, c)
                if len(cache) < _MAX_CACHED:
                    cache[key] = found
            state = found
            if not state[0] and not state[1]:
                return False
        return len(self.tokens) in state[0]
