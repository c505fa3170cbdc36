"""The rule condition language: a small, typed expression grammar parsed by hand.

Grammar (docs/rules.md)::

    expr    := or_
    or_     := and_ ("or" and_)*
    and_    := not_ ("and" not_)*
    not_    := "not" not_ | compare
    compare := sum [ CMP sum | "in" list | "not" "in" list ]
    sum     := product (("+" | "-") product)*
    product := unary (("*" | "/") unary)*
    unary   := "-" unary | atom
    atom    := NUMBER | STRING | "true" | "false" | NAME ("." NAME)* | "(" expr ")" | list
    list    := "[" [ sum ("," sum)* ] "]"
    CMP     := "==" | "!=" | "<" | "<=" | ">" | ">="

Names are ``entity.field`` (a fact) or ``params.a.b.c`` (a constitution value). User text is
never handed to ``eval``/``exec``: it becomes this AST, which is type-checked, compiled to
durable-rules patterns, and evaluated by a small interpreter for explanations.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

CMP_OPS = ("==", "!=", "<", "<=", ">", ">=")
MAX_LENGTH = 2000
MAX_DEPTH = 40


class ExprError(Exception):
    def __init__(self, message: str, offset: int):
        super().__init__(message)
        self.message = message
        self.offset = offset


# --- AST ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Node:
    offset: int


@dataclass(frozen=True)
class Literal(Node):
    value: float | int | str | bool


@dataclass(frozen=True)
class Name(Node):
    parts: tuple[str, ...]

    @property
    def dotted(self) -> str:
        return ".".join(self.parts)

    @property
    def is_param(self) -> bool:
        return self.parts[0] == "params"


@dataclass(frozen=True)
class ListExpr(Node):
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Neg(Node):
    operand: Node


@dataclass(frozen=True)
class Arith(Node):
    op: str
    left: Node
    right: Node


@dataclass(frozen=True)
class Compare(Node):
    op: str  # one of CMP_OPS, "in", "not in"
    left: Node
    right: Node


@dataclass(frozen=True)
class And(Node):
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Or(Node):
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Not(Node):
    operand: Node


# --- tokens ------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<number>\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)
  | (?P<string>'[^'\\\n]*'|"[^"\\\n]*")
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>==|!=|<=|>=|<|>|\+|-|\*|/|\(|\)|\[|\]|,|\.)
    """,
    re.VERBOSE,
)
_KEYWORDS = {"and", "or", "not", "in", "true", "false"}


@dataclass(frozen=True)
class Token:
    kind: str  # number, string, name, keyword, op, end
    text: str
    offset: int


def tokenize(text: str) -> list[Token]:
    if len(text) > MAX_LENGTH:
        raise ExprError(f"condition is longer than {MAX_LENGTH} characters", 0)
    tokens, pos = [], 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            ch = text[pos]
            hint = " (use 'and', 'or', 'not')" if ch in "&|!=" else ""
            raise ExprError(f"unexpected character {ch!r}{hint}", pos)
        kind = m.lastgroup or ""  # every alternative of the pattern is a named group
        if kind != "ws":
            word = m.group()
            if kind == "name" and word in _KEYWORDS:
                kind = "keyword"
            tokens.append(Token(kind, word, pos))
        pos = m.end()
    tokens.append(Token("end", "", len(text)))
    return tokens


# --- parser ------------------------------------------------------------------------------


class _Parser:
    def __init__(self, text: str):
        self.tokens = tokenize(text)
        self.i = 0
        self.depth = 0

    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def take(self) -> Token:
        t = self.tokens[self.i]
        self.i += 1
        return t

    def accept(self, kind: str, text: str) -> Token | None:
        if self.tok.kind == kind and self.tok.text == text:
            return self.take()
        return None

    def expect(self, kind: str, text: str) -> Token:
        t = self.accept(kind, text)
        if t is None:
            raise ExprError(
                f"expected '{text}' but found {self._describe(self.tok)}", self.tok.offset
            )
        return t

    @staticmethod
    def _describe(t: Token) -> str:
        return "the end of the condition" if t.kind == "end" else f"'{t.text}'"

    def parse(self) -> Node:
        node = self.or_()
        if self.tok.kind != "end":
            raise ExprError(
                f"unexpected {self._describe(self.tok)} after a complete condition", self.tok.offset
            )
        return node

    def _nest(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ExprError(f"condition nests deeper than {MAX_DEPTH} levels", self.tok.offset)

    def or_(self) -> Node:
        start = self.tok.offset
        items = [self.and_()]
        while self.accept("keyword", "or"):
            items.append(self.and_())
        return items[0] if len(items) == 1 else Or(start, tuple(items))

    def and_(self) -> Node:
        start = self.tok.offset
        items = [self.not_()]
        while self.accept("keyword", "and"):
            items.append(self.not_())
        return items[0] if len(items) == 1 else And(start, tuple(items))

    def not_(self) -> Node:
        t = self.accept("keyword", "not")
        if t:
            self._nest()
            node = Not(t.offset, self.not_())
            self.depth -= 1
            return node
        return self.compare()

    def compare(self) -> Node:
        left = self.sum_()
        t = self.tok
        if t.kind == "op" and t.text in CMP_OPS:
            self.take()
            return Compare(t.offset, t.text, left, self.sum_())
        if self.accept("keyword", "in"):
            return Compare(t.offset, "in", left, self.list_())
        if t.kind == "keyword" and t.text == "not" and self.tokens[self.i + 1].text == "in":
            self.take()
            self.take()
            return Compare(t.offset, "not in", left, self.list_())
        return left

    def list_(self) -> Node:
        t = self.tok
        if t.kind == "name":
            return self.atom()  # a params list, e.g. params.sleeves.gen.tickers
        self.expect("op", "[")
        items = []
        if not self.accept("op", "]"):
            items.append(self.sum_())
            while self.accept("op", ","):
                items.append(self.sum_())
            self.expect("op", "]")
        return ListExpr(t.offset, tuple(items))

    def sum_(self) -> Node:
        node = self.product()
        while self.tok.kind == "op" and self.tok.text in "+-":
            t = self.take()
            node = Arith(t.offset, t.text, node, self.product())
        return node

    def product(self) -> Node:
        node = self.unary()
        while self.tok.kind == "op" and self.tok.text in "*/":
            t = self.take()
            node = Arith(t.offset, t.text, node, self.unary())
        return node

    def unary(self) -> Node:
        t = self.accept("op", "-")
        if t:
            self._nest()
            node = Neg(t.offset, self.unary())
            self.depth -= 1
            return node
        return self.atom()

    def atom(self) -> Node:
        t = self.tok
        if t.kind == "number":
            self.take()
            value = float(t.text) if any(c in t.text for c in ".eE") else int(t.text)
            return Literal(t.offset, value)
        if t.kind == "string":
            self.take()
            return Literal(t.offset, t.text[1:-1])
        if t.kind == "keyword" and t.text in ("true", "false"):
            self.take()
            return Literal(t.offset, t.text == "true")
        if t.kind == "name":
            return self.name()
        if self.accept("op", "("):
            self._nest()
            node = self.or_()
            self.depth -= 1
            self.expect("op", ")")
            return node
        if t.kind == "op" and t.text == "[":
            return self.list_()
        raise ExprError(f"expected a value but found {self._describe(t)}", t.offset)

    def name(self) -> Node:
        first = self.take()
        parts = [first.text]
        while self.accept("op", "."):
            t = self.tok
            if t.kind not in ("name", "keyword"):
                raise ExprError(
                    f"expected a field name after '.' but found {self._describe(t)}", t.offset
                )
            parts.append(self.take().text)
        return Name(first.offset, tuple(parts))


@lru_cache(maxsize=4096)
def parse(text: str) -> Node:
    """Parse a condition or value expression; raises ``ExprError`` with the offset at fault.

    Cached: the AST is immutable, and a constitution is re-read on every reload and replay.
    """
    if not text.strip():
        raise ExprError("the condition is empty", 0)
    return _Parser(text).parse()


def names(node: Node) -> list[Name]:
    """Every name in ``node``, in order of appearance."""
    out: list[Name] = []
    _walk(node, out)
    return out


def _walk(node: Node, out: list[Name]) -> None:
    if isinstance(node, Name):
        out.append(node)
    elif isinstance(node, ListExpr | And | Or):
        for item in node.items:
            _walk(item, out)
    elif isinstance(node, Neg | Not):
        _walk(node.operand, out)
    elif isinstance(node, Arith | Compare):
        _walk(node.left, out)
        _walk(node.right, out)


def render(node: Node) -> str:
    """Canonical text of an expression (used in explanations and diffs)."""
    if isinstance(node, Literal):
        return _render_value(node.value)
    if isinstance(node, Name):
        return node.dotted
    if isinstance(node, ListExpr):
        return "[" + ", ".join(render(i) for i in node.items) + "]"
    if isinstance(node, Neg):
        return f"-{render(node.operand)}"
    if isinstance(node, Arith):
        return f"({render(node.left)} {node.op} {render(node.right)})"
    if isinstance(node, Compare):
        return f"{render(node.left)} {node.op} {render(node.right)}"
    if isinstance(node, And):
        return " and ".join(_paren(i, Or) for i in node.items)
    if isinstance(node, Or):
        return " or ".join(render(i) for i in node.items)
    if isinstance(node, Not):
        return f"not {_paren(node.operand, (And, Or))}"
    raise TypeError(type(node).__name__)


def _render_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)  # strings quoted, numbers as Python writes them


def _paren(node: Node, kinds: type[Node] | tuple[type[Node], ...]) -> str:
    text = render(node)
    return f"({text})" if isinstance(node, kinds) else text
