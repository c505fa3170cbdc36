"""Safe YAML loading that remembers where every value came from.

PyYAML's safe loader is used only to *compose* the node graph; we construct plain Python data
ourselves so that we can:

* keep the line/column of every mapping key and value (``marks``) for located errors;
* reject duplicate keys (PyYAML silently keeps the last one);
* reject ``!!python/...`` and other unknown tags instead of constructing anything;
* bound alias expansion (a "billion laughs" document is refused, not expanded);
* keep timestamps as their text (validated later by the models), so canonical JSON and the
  JSON Schema pass see exactly what the user wrote.

Never ``yaml.load`` with a full loader anywhere in this project.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from constitution.errors import InvalidInput, Problem

Path_ = tuple[str | int, ...]

MAX_NODES = 200_000  # constructed values, aliases counted at every use
MAX_BYTES = 5 * 1024 * 1024

_STD = "tag:yaml.org,2002:"
# libyaml's C composer when present (same safe node graph, ~10x faster); else pure Python.
_COMPOSER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_SCALAR_TAGS = {f"{_STD}{t}" for t in ("str", "int", "float", "bool", "null", "timestamp")}


@dataclass(frozen=True)
class Loaded:
    """A parsed document: plain data plus the (line, col) of every path in it (1-based)."""

    source: str
    data: Any
    marks: dict[Path_, tuple[int, int]]
    text: str
    value_marks: dict[Path_, tuple[int, int]] | None = None  # where each value starts (keys: marks)

    def where(self, path: Path_) -> tuple[int, int]:
        """The position of ``path``, or of its nearest ancestor that has one."""
        p = tuple(path)
        while p:
            if p in self.marks:
                return self.marks[p]
            p = p[:-1]
        return self.marks.get((), (1, 1))

    def problem(self, path: Path_, code: str, message: str) -> Problem:
        line, col = self.where(path)
        return Problem(self.source, line, col, code, dotted(path), message)


def dotted(path: Path_) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def load_file(path: str | Path, display: str | None = None) -> Loaded:
    """Read and parse ``path``; every failure is an ``InvalidInput`` with located problems."""
    p = Path(path)
    name = display or str(path)
    try:
        with p.open("rb") as f:  # at most one byte past the limit: a huge file is never read whole
            raw = f.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise InvalidInput([Problem(name, 1, 1, "file-not-found", "", "no such file")]) from None
    except IsADirectoryError:
        raise InvalidInput([Problem(name, 1, 1, "file-not-found", "", "is a directory")]) from None
    except OSError as exc:
        raise InvalidInput(
            [Problem(name, 1, 1, "file-unreadable", "", exc.strerror or str(exc))]
        ) from None
    return load_bytes(raw, name)


def load_bytes(raw: bytes, source: str) -> Loaded:
    if len(raw) > MAX_BYTES:
        raise InvalidInput(
            [Problem(source, 1, 1, "too-large", "", f"file is over {MAX_BYTES} bytes")]
        )
    text = _decode(raw, source)
    return load_text(text, source)


# Constructs that PyYAML reports where it *noticed* they were not closed (often the next line);
# the mistake is where they were opened, so that is where we point.
_UNCLOSED = {
    "flow sequence": "the '[' opened here",
    "flow mapping": "the '{' opened here",
    "quoted scalar": "the quote opened here",
}


def _syntax_problem(exc: yaml.MarkedYAMLError, source: str) -> Problem:
    what = exc.problem or "syntax error"
    unclosed = next((v for k, v in _UNCLOSED.items() if k in (exc.context or "")), None)
    opened = exc.context_mark if unclosed else None
    mark = opened or exc.problem_mark or exc.context_mark
    line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    if opened is not None and exc.problem_mark is not None:
        noticed = exc.problem_mark.line + 1
        what = f"{unclosed} is never closed (the parser stopped at line {noticed}: {what})"
    elif exc.context:
        what = f"{exc.context}: {what}"
    return Problem(source, line, col, "yaml-syntax", "", what)


def load_text(text: str, source: str) -> Loaded:
    if not text.strip() or _only_comments(text):
        raise InvalidInput([Problem(source, 1, 1, "empty", "", "the file is empty")])
    try:
        node = yaml.compose(text, Loader=_COMPOSER)
    except yaml.MarkedYAMLError as exc:
        raise InvalidInput([_syntax_problem(exc, source)]) from None
    except yaml.YAMLError as exc:
        raise InvalidInput([Problem(source, 1, 1, "yaml-syntax", "", str(exc))]) from None
    if node is None:
        raise InvalidInput([Problem(source, 1, 1, "empty", "", "the file has no document")])
    builder = _Builder(source)
    data = builder.build(node, ())
    if builder.problems:
        raise InvalidInput(builder.problems)
    return Loaded(source, data, builder.marks, text, builder.value_marks)


def _decode(raw: bytes, source: str) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        before = raw[: exc.start]
        line = before.count(b"\n") + 1
        col = exc.start - (before.rfind(b"\n") + 1) + 1
        msg = (
            f"not UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start}); save the file as UTF-8"
        )
        raise InvalidInput([Problem(source, line, col, "encoding", "", msg)]) from None


def _only_comments(text: str) -> bool:
    return all(not ln.strip() or ln.lstrip().startswith("#") for ln in text.splitlines())


class _Builder:
    def __init__(self, source: str):
        self.source = source
        self.marks: dict[Path_, tuple[int, int]] = {}
        self.value_marks: dict[Path_, tuple[int, int]] = {}
        self.problems: list[Problem] = []
        self.count = 0
        self._scalar = yaml.SafeLoader("")  # only its scalar constructors are used

    def _problem(self, node: yaml.Node, path: Path_, code: str, message: str) -> None:
        m = node.start_mark
        self.problems.append(
            Problem(self.source, m.line + 1, m.column + 1, code, dotted(path), message)
        )

    def build(self, node: yaml.Node, path: Path_) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            if self.count == MAX_NODES + 1:
                self._problem(
                    node,
                    path,
                    "alias-bomb",
                    f"document expands to more than {MAX_NODES} values (anchor/alias expansion?)",
                )
            return None
        here = (node.start_mark.line + 1, node.start_mark.column + 1)
        self.marks.setdefault(path, here)
        self.value_marks.setdefault(path, here)
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            if node.tag != f"{_STD}seq":
                return self._bad_tag(node, path)
            return [self.build(child, (*path, i)) for i, child in enumerate(node.value)]
        assert isinstance(node, yaml.ScalarNode)  # the composer makes only these three kinds
        return self._scalar_value(node, path)

    def _mapping(self, node: yaml.MappingNode, path: Path_) -> dict | None:
        if node.tag != f"{_STD}map":
            self._bad_tag(node, path)
            return None
        out: dict = {}
        for key_node, value_node in node.value:
            if key_node.tag == f"{_STD}merge":
                self._problem(
                    key_node,
                    path,
                    "merge-key",
                    "'<<' merge keys are not supported; write the keys out",
                )
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                self._problem(key_node, path, "bad-key", "mapping keys must be plain scalars")
                continue
            key = self._scalar_value(key_node, path)
            if not isinstance(key, str):
                key = str(key) if isinstance(key, int | float | bool) or key is None else key
            child = (*path, key)
            if key in out:
                first = self.marks.get(child, (0, 0))[0]
                self._problem(
                    key_node,
                    child,
                    "duplicate-key",
                    f"key '{key}' appears again (first on line {first})",
                )
                continue
            self.marks[child] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            out[key] = self.build(value_node, child)
        return out

    def _scalar_value(self, node: yaml.ScalarNode, path: Path_) -> Any:
        tag = node.tag
        if tag not in _SCALAR_TAGS:
            return self._bad_tag(node, path)
        if tag == f"{_STD}timestamp":
            return node.value  # keep the text: models parse dates with their own rules
        if tag == f"{_STD}float":
            if ":" in node.value:
                return node.value  # YAML 1.1 base-60 (14:30 -> 870): a time of day, kept as text
            return self._float(node, path)
        if tag == f"{_STD}int" and ":" in node.value:
            return node.value  # YAML 1.1 base-60 (14:30 -> 870): a time of day, kept as text
        try:
            return self._scalar.construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            self._problem(node, path, "yaml-value", str(exc).splitlines()[0])
            return None

    def _float(self, node: yaml.ScalarNode, path: Path_) -> float | None:
        # .nan/.inf are kept: the models refuse non-finite numbers with the path, alongside
        # every other problem (stopping here would hide the rest).
        return self._scalar.construct_object(node, deep=True)

    def _bad_tag(self, node: yaml.Node, path: Path_) -> None:
        tag = node.tag or "?"
        if tag.startswith(f"{_STD}python/"):
            self._problem(
                node,
                path,
                "unsafe-tag",
                f"tag '!!{tag[len(_STD) :]}' would run code; it is refused",
            )
        else:
            self._problem(
                node, path, "unknown-tag", f"tag '{tag}' is not allowed (plain YAML values only)"
            )
        return None
