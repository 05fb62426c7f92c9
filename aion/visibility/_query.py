"""The visibility query language: a small recursive-descent parser from text to a typed query.

Grammar (keywords are case-insensitive; names are identifiers or back-quoted)::

    query      := [WHERE] [expr] [ORDER BY order {, order}] [GROUP BY name]
    expr       := and_expr {OR and_expr}
    and_expr   := not_expr {AND not_expr}
    not_expr   := NOT not_expr | '(' expr ')' | predicate
    predicate  := name ('=' | '!=' | '<>' | '<' | '<=' | '>' | '>=') literal
                | name [NOT] IN '(' literal {, literal} ')'
                | name [NOT] BETWEEN literal AND literal
                | name STARTS_WITH literal
                | name IS [NOT] NULL
    order      := name [ASC | DESC]
    literal    := 'text' | "text" | number | TRUE | FALSE

Every name is checked against the schema and every literal converted to the attribute's type when the query is
parsed (:func:`parse_query`), so a query that parses can be run without a type error. Any mistake raises
``InvalidArgumentError`` naming the position (0-based character offset) and what was expected there.
A hand-written parser (rather than a parsing library) because the grammar is a dozen rules and the errors must
name the position and the attribute's type in aion's words.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Final

from aion.errors import InvalidArgumentError
from aion.status import WorkflowStatus
from aion.visibility._schema import SearchAttributeSchema, normalise

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<string>'(?:[^'\\]|\\.|'')*'|"(?:[^"\\]|\\.|"")*")
  | (?P<number>[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*|`[^`]+`)
  | (?P<op><=|>=|!=|<>|=|<|>|\(|\)|,)
    """,
    re.VERBOSE,
)
_KEYWORDS: Final = frozenset(
    {
        "AND",
        "OR",
        "NOT",
        "IN",
        "BETWEEN",
        "STARTS_WITH",
        "IS",
        "NULL",
        "ORDER",
        "GROUP",
        "BY",
        "ASC",
        "DESC",
        "TRUE",
        "FALSE",
        "WHERE",
    }
)
#: Comparison operators, as the query writes them -> as the AST holds them.
COMPARISONS: Final = {"=": "=", "!=": "!=", "<>": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
#: The attributes ``GROUP BY`` accepts.
GROUPABLE: Final = ("Status",)


@dataclass(frozen=True)
class Token:
    kind: str  # string, number, name, keyword, op, end
    text: str
    position: int
    value: Any = None


@dataclass(frozen=True)
class Compare:
    """``name op value``."""

    name: str
    kind: str
    op: str
    value: Any


@dataclass(frozen=True)
class In:
    """``name IN (values)`` (``negated``: ``NOT IN``)."""

    name: str
    kind: str
    values: tuple[Any, ...]
    negated: bool = False


@dataclass(frozen=True)
class Between:
    """``name BETWEEN low AND high``, both ends included (``negated``: ``NOT BETWEEN``)."""

    name: str
    kind: str
    low: Any
    high: Any
    negated: bool = False


@dataclass(frozen=True)
class StartsWith:
    """``name STARTS_WITH prefix``."""

    name: str
    kind: str
    prefix: str


@dataclass(frozen=True)
class IsNull:
    """``name IS NULL`` (``negated``: ``IS NOT NULL``)."""

    name: str
    kind: str
    negated: bool = False


@dataclass(frozen=True)
class And:
    """Every item holds."""

    items: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    """Some item holds."""

    items: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    """The item does not hold."""

    item: Node


Node = Compare | In | Between | StartsWith | IsNull | And | Or | Not


@dataclass(frozen=True)
class OrderKey:
    """One ``ORDER BY`` key."""

    name: str
    descending: bool = False


#: The order of a query without ``ORDER BY``: newest start first.
DEFAULT_ORDER: Final = (OrderKey("StartTime", descending=True),)


@dataclass(frozen=True)
class Query:
    """A parsed, typed query: the filter (``None``: every run), the order and the grouping."""

    where: Node | None = None
    order: tuple[OrderKey, ...] = DEFAULT_ORDER
    group_by: tuple[str, ...] = field(default=())
    text: str = ""


def _tokens(text: str) -> list[Token]:
    tokens: list[Token] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            raise InvalidArgumentError(f"query: unexpected character {text[position]!r} at position {position}")
        kind = match.lastgroup
        raw = match.group()
        assert kind is not None
        if kind == "string":
            quote = raw[0]
            body = raw[1:-1].replace(quote * 2, quote)
            tokens.append(Token("string", raw, position, re.sub(r"\\(.)", r"\1", body)))
        elif kind == "number":
            number = float(raw) if any(c in raw for c in ".eE") else int(raw)
            tokens.append(Token("number", raw, position, number))
        elif kind == "name":
            if raw.startswith("`"):
                tokens.append(Token("name", raw[1:-1], position))
            elif raw.upper() in _KEYWORDS:
                tokens.append(Token("keyword", raw.upper(), position))
            else:
                tokens.append(Token("name", raw, position))
        elif kind == "op":
            tokens.append(Token("op", raw, position))
        position = match.end()
    tokens.append(Token("end", "end of query", len(text)))
    return tokens


def _status_value(value: Any, where: str) -> str:
    """A status literal: ``running``, ``Running`` and ``TimedOut`` all name a status."""
    if isinstance(value, str):
        snake = re.sub(r"(?<=[a-z])(?=[A-Z])", "_", value).lower()
        try:
            return WorkflowStatus(snake).value
        except ValueError:
            pass
    known = ", ".join(status.value for status in WorkflowStatus)
    raise InvalidArgumentError(f"query: {value!r} {where} is not a workflow status (one of: {known})")


class _Parser:
    def __init__(self, text: str, schema: SearchAttributeSchema) -> None:
        self.text = text
        self.schema = schema
        self.tokens = _tokens(text)
        self.index = 0

    # -- the token stream --------------------------------------------------------------------------------

    @property
    def token(self) -> Token:
        return self.tokens[self.index]

    def advance(self) -> Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def at_keyword(self, *words: str) -> bool:
        return self.token.kind == "keyword" and self.token.text in words

    def at_op(self, op: str) -> bool:
        return self.token.kind == "op" and self.token.text == op

    def error(self, expected: str, token: Token | None = None) -> InvalidArgumentError:
        token = token or self.token
        found = "the end of the query" if token.kind == "end" else repr(token.text)
        return InvalidArgumentError(f"query: expected {expected} at position {token.position}, found {found}")

    def expect_keyword(self, word: str) -> None:
        if not self.at_keyword(word):
            raise self.error(word)
        self.advance()

    def expect_op(self, op: str) -> None:
        if not self.at_op(op):
            raise self.error(repr(op))
        self.advance()

    # -- the grammar ---------------------------------------------------------------------------------------

    def query(self) -> Query:
        if self.at_keyword("WHERE"):
            self.advance()
        where = None
        if self.token.kind != "end" and not self.at_keyword("ORDER", "GROUP"):
            where = self.expr()
        order: tuple[OrderKey, ...] = DEFAULT_ORDER
        if self.at_keyword("ORDER"):
            self.advance()
            self.expect_keyword("BY")
            keys = [self.order_key()]
            while self.at_op(","):
                self.advance()
                keys.append(self.order_key())
            order = tuple(keys)
        group: tuple[str, ...] = ()
        if self.at_keyword("GROUP"):
            self.advance()
            self.expect_keyword("BY")
            token = self.token
            name = self.name()
            if name not in GROUPABLE:
                raise InvalidArgumentError(
                    f"query: GROUP BY {name} at position {token.position}: only {', '.join(GROUPABLE)} can be grouped"
                )
            group = (name,)
        if self.token.kind != "end":
            raise self.error("AND, OR, ORDER BY, GROUP BY or the end of the query")
        return Query(where, order, group, self.text)

    def order_key(self) -> OrderKey:
        token = self.token
        name = self.name()
        kind = self.kind_of(name, token)
        if kind in ("text", "keyword_list"):
            raise InvalidArgumentError(
                f"query: cannot ORDER BY {name} at position {token.position}: a {kind} attribute has no order"
            )
        descending = False
        if self.at_keyword("ASC", "DESC"):
            descending = self.advance().text == "DESC"
        return OrderKey(name, descending)

    def name(self) -> str:
        if self.token.kind != "name":
            raise self.error("an attribute name")
        return self.advance().text

    def kind_of(self, name: str, token: Token) -> str:
        kind = self.schema.type_of(name)
        if kind is None:
            known = ", ".join(sorted(self.schema.custom)) or "none declared"
            raise InvalidArgumentError(
                f"query: unknown attribute {name!r} at position {token.position} (declared: {known}; "
                "built in: WorkflowId, RunId, WorkflowType, Status, StartTime, CloseTime, ExecutionDuration, Version)"
            )
        return kind

    def expr(self) -> Node:
        items = [self.and_expr()]
        while self.at_keyword("OR"):
            self.advance()
            items.append(self.and_expr())
        return items[0] if len(items) == 1 else Or(tuple(items))

    def and_expr(self) -> Node:
        items = [self.not_expr()]
        while self.at_keyword("AND"):
            self.advance()
            items.append(self.not_expr())
        return items[0] if len(items) == 1 else And(tuple(items))

    def not_expr(self) -> Node:
        if self.at_keyword("NOT"):
            self.advance()
            return Not(self.not_expr())
        if self.at_op("("):
            self.advance()
            inner = self.expr()
            self.expect_op(")")
            return inner
        return self.predicate()

    def predicate(self) -> Node:
        token = self.token
        if token.kind != "name":
            raise self.error("an attribute name, NOT or '('")
        name = self.advance().text
        kind = self.kind_of(name, token)
        if self.token.kind == "op" and self.token.text in COMPARISONS:
            op = COMPARISONS[self.advance().text]
            if kind == "keyword_list" and op not in ("=", "!="):
                raise InvalidArgumentError(
                    f"query: {name} {op} at position {token.position}: a keyword_list only takes =, !=, IN, "
                    "STARTS_WITH and IS NULL"
                )
            return Compare(name, kind, op, self.literal(name, kind))
        negated = False
        if self.at_keyword("NOT"):
            self.advance()
            negated = True
            if not self.at_keyword("IN", "BETWEEN"):
                raise self.error("IN or BETWEEN after NOT")
        if self.at_keyword("IN"):
            self.advance()
            self.expect_op("(")
            values = [self.literal(name, kind)]
            while self.at_op(","):
                self.advance()
                values.append(self.literal(name, kind))
            self.expect_op(")")
            return In(name, kind, tuple(values), negated)
        if self.at_keyword("BETWEEN"):
            if kind == "keyword_list":
                raise InvalidArgumentError(
                    f"query: {name} BETWEEN at position {token.position}: a keyword_list has no order"
                )
            self.advance()
            low = self.literal(name, kind)
            self.expect_keyword("AND")
            high = self.literal(name, kind)
            return Between(name, kind, low, high, negated)
        if self.at_keyword("STARTS_WITH"):
            if kind not in ("keyword", "text", "keyword_list"):
                raise InvalidArgumentError(
                    f"query: {name} STARTS_WITH at position {token.position}: {name} is {kind}, not a keyword or text"
                )
            self.advance()
            literal = self.token
            if literal.kind != "string":
                raise self.error("a quoted prefix")
            self.advance()
            return StartsWith(name, kind, literal.value)
        if self.at_keyword("IS"):
            self.advance()
            is_not = False
            if self.at_keyword("NOT"):
                self.advance()
                is_not = True
            self.expect_keyword("NULL")
            return IsNull(name, kind, is_not)
        raise self.error(f"an operator after {name} (=, !=, <, <=, >, >=, IN, BETWEEN, STARTS_WITH, IS)")

    def literal(self, name: str, kind: str) -> Any:
        token = self.token
        if token.kind in ("string", "number"):
            value = token.value
        elif self.at_keyword("TRUE", "FALSE"):
            value = token.text == "TRUE"
        else:
            raise self.error(f"a value for {name} ({kind})")
        self.advance()
        where = f"for {name} at position {token.position}"
        if name == "Status":
            return _status_value(value, where)
        if kind == "bool" and isinstance(value, str) and value.lower() in ("true", "false"):
            value = value.lower() == "true"
        item_kind = "keyword" if kind == "keyword_list" else kind
        if item_kind == "int" and isinstance(value, float) and value.is_integer():
            value = int(value)
        try:
            return normalise(item_kind, value, f"the value {token.text}")
        except InvalidArgumentError as error:
            raise InvalidArgumentError(f"query: {error} {where}") from None


def parse_query(text: str | None, schema: SearchAttributeSchema) -> Query:
    """Parse and type ``text`` against ``schema`` (``None`` or blank: every run, newest first)."""
    if text is None:
        return Query()
    if not isinstance(text, str):
        raise InvalidArgumentError(f"query must be a string, not {text!r}")
    return _Parser(text, schema).query()
