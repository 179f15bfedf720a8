"""The `pip install` preamble of kfp lightweight components, and whether we may skip it.

Called by `launcher`. A `@dsl.component` compiles to
`sh -c "<ensurepip; pip install 'kfp==X' ... && "$0" "$@">" sh -ec "<write source; python3 -m
kfp.dsl.executor_main ...>" <source> <args...>`. Installing kfp on every task start costs seconds
and needs the network, which a disconnected site does not have. So: when every requirement of the
preamble is already installed in the task's Python at a compatible version (kfp itself: any 2.x,
the executor protocol is stable across 2.x), the preamble is dropped and the task starts at once.
When one is missing, the launcher only runs pip if a package index was configured (PIP_INDEX_URL,
PIP_FIND_LINKS) or pip was explicitly allowed, and otherwise fails with a message naming it.

Standard library only: this module runs inside task processes.
"""

from __future__ import annotations

import importlib.metadata
import re
import shlex
import sys
from dataclasses import dataclass

_OPTIONS_WITH_VALUE = {"--index-url", "-i", "--extra-index-url", "--trusted-host", "--find-links", "-f"}
_REQUIREMENT = re.compile(
    r"^\s*(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*(?P<spec>[^;]*)(?:;(?P<marker>.*))?$"
)
_CLAUSE = re.compile(r"^\s*(?P<op>===|==|!=|~=|>=|<=|>|<)\s*(?P<version>[^\s]+)\s*$")
_MARKER = re.compile(r"""^\s*python_version\s*(?P<op>==|!=|>=|<=|>|<)\s*["'](?P<version>[^"']+)["']\s*$""")


@dataclass(frozen=True)
class Split:
    """A lightweight component's command, split at the end of its pip preamble."""

    requirements: tuple[str, ...]
    rest: tuple[str, ...]  # the command without the preamble: ["sh", "-ec", script, source, *args]


def split(command: list[str]) -> Split | None:
    """The requirements and the remaining command, or None when there is no pip preamble."""
    if len(command) < 4 or command[0] not in ("sh", "bash") or command[1] != "-c":
        return None
    script = command[2]
    if "pip install" not in script or not script.rstrip().endswith('"$0" "$@"'):
        return None
    return Split(requirements=tuple(requirements_of(script)), rest=tuple(command[3:]))


def requirements_of(script: str) -> list[str]:
    """Every requirement named by `pip install` commands in a shell script (options dropped)."""
    found: list[str] = []
    for segment in re.split(r"&&|\n|;(?=\s*(?:then|fi|PIP_|python3))", script):
        if "pip install" not in segment:
            continue
        try:
            words = shlex.split(segment.split("pip install", 1)[1])
        except ValueError:
            continue
        skip = False
        for word in words:
            if skip:
                skip = False
            elif word in _OPTIONS_WITH_VALUE:
                skip = True
            elif not word.startswith("-") and word not in ('"$0"', '"$@"', "$0", "$@"):
                found.append(word)
    return found


def _version_tuple(text: str) -> tuple[int, ...]:
    parts = []
    for piece in text.split("."):
        digits = re.match(r"\d+", piece)
        if digits is None:
            break
        parts.append(int(digits.group()))
    return tuple(parts)


def _compare(installed: tuple[int, ...], op: str, wanted_text: str) -> bool:
    if wanted_text.endswith(".*"):
        prefix = _version_tuple(wanted_text[:-2])
        same = installed[: len(prefix)] == prefix
        return same if op == "==" else not same
    wanted = _version_tuple(wanted_text)
    width = max(len(installed), len(wanted))
    a, b = installed + (0,) * (width - len(installed)), wanted + (0,) * (width - len(wanted))
    if op == "~=":
        return a >= b and a[: len(wanted) - 1] == b[: len(wanted) - 1]
    return {
        "==": a == b,
        "===": a == b,
        "!=": a != b,
        ">=": a >= b,
        "<=": a <= b,
        ">": a > b,
        "<": a < b,
    }[op]


def marker_applies(marker: str) -> bool:
    """Only `python_version <op> "X.Y"` markers are understood; any other marker counts as applying."""
    match = _MARKER.match(marker)
    if match is None:
        return True
    return _compare(sys.version_info[:2], match.group("op"), match.group("version"))


def unsatisfied(requirements: tuple[str, ...] | list[str]) -> list[str]:
    """The requirements that this Python does not already satisfy."""
    missing = []
    for requirement in requirements:
        match = _REQUIREMENT.match(requirement)
        if match is None:  # a URL, a path, a VCS link: we cannot tell, so it must be installed
            missing.append(requirement)
            continue
        if match.group("marker") and not marker_applies(match.group("marker")):
            continue
        name = match.group("name")
        try:
            installed = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            missing.append(requirement)
            continue
        if name.lower() == "kfp":
            if _version_tuple(installed)[:1] != (2,):
                missing.append(requirement)
            continue
        clauses = [c for c in match.group("spec").split(",") if c.strip()]
        for clause in clauses:
            parsed = _CLAUSE.match(clause)
            if parsed is None or not _compare(_version_tuple(installed), parsed.group("op"), parsed.group("version")):
                missing.append(requirement)
                break
    return missing


def kfp_executor_call(command: tuple[str, ...] | list[str]) -> tuple[str, list[str]] | None:
    """(component source, executor_main argv) when `command` is kfp's `sh -ec` executor script."""
    if len(command) < 4 or command[0] not in ("sh", "bash") or command[1] not in ("-ec", "-c"):
        return None
    script = command[2]
    if "kfp.dsl.executor_main" not in script or "--component_module_path" not in script:
        return None
    return command[3], list(command[4:])
