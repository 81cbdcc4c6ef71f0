"""Text from the tree or the workspace, made safe to print.

CI runners read their logs as commands: a line starting with `::set-env` (GitHub Actions) or holding
`##vso[task.prependpath]` (Azure Pipelines) changes the job. A value with a newline in it (a tag key,
a name, an actor) would start such a line. So every value printed is escaped (`escape`: control
characters and line separators become `\\n`, `\\x1b`, `\\u2028`, …), the logging commands escape their
data the way each runner documents, and as a last guard every printed line that is not one of our own
commands has its command prefixes defused (`defuse`).
"""

from __future__ import annotations

import re

# C0 controls but tab, DEL, C1 controls, and the Unicode line and paragraph separators
_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\x1b": "\\x1b", "\x00": "\\0"}
_COMMAND_START = re.compile(r"^(\s*)(::)")  # GitHub reads commands after leading whitespace
_AZURE_ANYWHERE = re.compile(r"##(vso)?\[", re.I)  # the Azure agent finds them anywhere in a line


def _one(m: re.Match[str]) -> str:
    c = m.group(0)
    return _NAMED.get(c) or (f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}")


def escape(value: object) -> str:
    """One printable line: control characters and line breaks shown as escapes, never acted on."""
    text = str(value)
    return _CONTROL.sub(_one, text) if _CONTROL.search(text) else text


def defuse(line: str) -> str:
    """A line that is not our own runner command: no command prefix at its start, no Azure command in it."""
    if "::" in line or "##" in line:
        line = _COMMAND_START.sub(lambda m: f"{m.group(1)}\\{m.group(2)}", line)
        line = _AZURE_ANYWHERE.sub(lambda m: m.group(0)[:-1] + "%5B", line)
    return line


def defuse_text(text: str) -> str:
    return "\n".join(defuse(line) for line in text.split("\n")) if ("::" in text or "##" in text) else text


def github_data(text: str) -> str:
    """The message of a GitHub workflow command (`::error …::DATA`)."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def github_property(text: str) -> str:
    """A property value of a GitHub workflow command (`file=…,title=…`)."""
    return github_data(text).replace(":", "%3A").replace(",", "%2C")


def azure_data(text: str) -> str:
    """A value of an Azure Pipelines logging command (`##vso[…]DATA` and its properties)."""
    for raw, escaped in (("%", "%AZP25"), ("\r", "%0D"), ("\n", "%0A"), (";", "%3B"), ("]", "%5D")):
        text = text.replace(raw, escaped)
    return text


def shorten(text: str, width: int) -> str:
    """The first line of text in at most `width` characters, cut at a word boundary and marked with `…`."""
    line = (text.splitlines() or [""])[0].strip()
    if len(line) <= width:
        return line
    cut = line[: width - 1]
    if " " in cut and not line[width - 1].isspace():
        cut = cut.rsplit(" ", 1)[0]  # never half a word
    return cut.rstrip(" ,;:.-") + "…"
