"""The segment filter language: tokenizer, parser and validation, with positions in errors.

    expr       := or
    or         := and ("OR" and)*
    and        := not ("AND" not)*
    not        := "NOT" not | "(" expr ")" | condition
    condition  := FIELD op value | FIELD "IN" "(" value ("," value)* ")"
    op         := = | != | < | <= | > | >=
    value      := NUMBER | "string" | true | false | stage name | now[(+|-)N(d|h|m|w)]

Examples: `stage = stable AND last_order_at < now-30d`, `NOT tag = "vip" OR revenue >= 1000`.
Positions in errors are 1-based character offsets into the expression.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from loopkit.errors import InvalidArgument

Kind = Literal["number", "time", "string", "stage", "bool", "tag"]

# Every field a segment may test, with its type.
FIELDS: dict[str, Kind] = {
    "order_count": "number",
    "revenue": "number",
    "referrals_made": "number",
    "rfm_r": "number",
    "rfm_f": "number",
    "rfm_m": "number",
    "rfm_score": "number",
    "churn_risk": "number",
    "points": "number",
    "first_seen_at": "time",
    "last_seen_at": "time",
    "first_order_at": "time",
    "last_order_at": "time",
    "last_interaction_at": "time",
    "stage": "stage",
    "channel": "string",
    "channel_kind": "string",
    "owner_rep": "string",
    "tag": "tag",
    "top_customer": "bool",
    "unsubscribed": "bool",
    "consent": "bool",
    "deleted_rep": "bool",
}
STAGE_NAMES = ("investigation", "development", "stable", "decline", "churned")
OPS = ("=", "!=", "<", "<=", ">", ">=")
UNITS = {"d": 86400, "h": 3600, "m": 60, "w": 7 * 86400}
MAX_LENGTH = 2000
MAX_CONDITIONS = 50

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<duration>\d+(?:\.\d+)?[A-Za-z]+)
  | (?P<number>\d+(?:\.\d+)?)
  | (?P<op>!=|<=|>=|=|<|>)
  | (?P<sign>[+-])
  | (?P<lparen>\()
  | (?P<rparen>\))
  | (?P<comma>,)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
    """,
    re.VERBOSE,
)


@dataclass(frozen=True)
class Token:
    kind: str
    text: str
    pos: int  # 1-based


@dataclass(frozen=True)
class TimeValue:
    """now + offset (seconds)."""

    offset_s: float

    def at(self, now: datetime) -> datetime:
        return now + timedelta(seconds=self.offset_s)


Value = float | str | bool | TimeValue


@dataclass(frozen=True)
class Condition:
    field: str
    kind: Kind
    op: str  # one of OPS, or "in"
    values: tuple[Value, ...]
    pos: int


@dataclass(frozen=True)
class Not:
    node: Node


@dataclass(frozen=True)
class BoolOp:
    op: Literal["and", "or"]
    nodes: tuple[Node, ...]


Node = Condition | Not | BoolOp


def _error(pos: int, message: str) -> InvalidArgument:
    return InvalidArgument(f"at position {pos}: {message}", field="expression")


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    i = 0
    while i < len(text):
        m = _TOKEN.match(text, i)
        if m is None:
            raise _error(i + 1, f"unexpected character {text[i]!r}")
        kind = m.lastgroup or ""
        if kind != "ws":
            tokens.append(Token(kind, m.group(), i + 1))
        i = m.end()
    tokens.append(Token("end", "", len(text) + 1))
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = tokenize(text)
        self.i = 0
        self.conditions = 0

    def peek(self) -> Token:
        return self.tokens[self.i]

    def take(self) -> Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def keyword(self, word: str) -> bool:
        tok = self.peek()
        if tok.kind == "ident" and tok.text.upper() == word:
            self.i += 1
            return True
        return False

    def expect(self, kind: str, what: str) -> Token:
        tok = self.peek()
        if tok.kind != kind:
            found = "the end" if tok.kind == "end" else repr(tok.text)
            raise _error(tok.pos, f"expected {what}, found {found}")
        return self.take()

    def parse(self) -> Node:
        node = self.parse_or()
        tok = self.peek()
        if tok.kind != "end":
            raise _error(tok.pos, f"expected AND, OR or the end, found {tok.text!r}")
        return node

    def parse_or(self) -> Node:
        nodes = [self.parse_and()]
        while self.keyword("OR"):
            nodes.append(self.parse_and())
        return nodes[0] if len(nodes) == 1 else BoolOp("or", tuple(nodes))

    def parse_and(self) -> Node:
        nodes = [self.parse_not()]
        while self.keyword("AND"):
            nodes.append(self.parse_not())
        return nodes[0] if len(nodes) == 1 else BoolOp("and", tuple(nodes))

    def parse_not(self) -> Node:
        if self.keyword("NOT"):
            return Not(self.parse_not())
        if self.peek().kind == "lparen":
            self.take()
            node = self.parse_or()
            self.expect("rparen", "')'")
            return node
        return self.parse_condition()

    def parse_condition(self) -> Condition:
        tok = self.peek()
        if tok.kind != "ident" or tok.text.upper() in ("AND", "OR", "NOT", "IN"):
            found = "the end" if tok.kind == "end" else repr(tok.text)
            raise _error(tok.pos, f"expected a field name, found {found}")
        self.take()
        name = tok.text.lower()
        kind = FIELDS.get(name)
        if kind is None:
            raise _error(tok.pos, f"unknown field {tok.text!r} (known: {', '.join(FIELDS)})")
        self.conditions += 1
        if self.conditions > MAX_CONDITIONS:
            raise _error(tok.pos, f"more than {MAX_CONDITIONS} conditions")
        if self.keyword("IN"):
            self.expect("lparen", "'(' after IN")
            values = [self.parse_value(name, kind)]
            while self.peek().kind == "comma":
                self.take()
                values.append(self.parse_value(name, kind))
            self.expect("rparen", "')'")
            if kind in ("time", "bool"):
                raise _error(tok.pos, f"IN is not available for {kind} field {name!r}")
            return Condition(name, kind, "in", tuple(values), tok.pos)
        op_tok = self.expect("op", f"a comparison (=, !=, <, <=, >, >=) after {name!r}")
        if kind in ("string", "stage", "bool", "tag") and op_tok.text not in ("=", "!="):
            raise _error(op_tok.pos, f"{kind} field {name!r} only takes = or !=")
        value = self.parse_value(name, kind)
        return Condition(name, kind, op_tok.text, (value,), tok.pos)

    def parse_value(self, name: str, kind: Kind) -> Value:
        tok = self.peek()
        if kind == "time":
            return self.parse_time(name)
        if kind == "number":
            negative = False
            if tok.kind == "sign":
                negative = tok.text == "-"
                self.take()
                tok = self.peek()
            if tok.kind != "number":
                raise _error(tok.pos, f"type mismatch: {name!r} is a number, got {_show(tok)}")
            self.take()
            number = float(tok.text)
            return -number if negative else number
        if kind == "bool":
            if tok.kind == "ident" and tok.text.lower() in ("true", "false"):
                self.take()
                return tok.text.lower() == "true"
            raise _error(tok.pos, f"type mismatch: {name!r} is true or false, got {_show(tok)}")
        # string, stage, tag
        if tok.kind == "string":
            self.take()
            text = _unquote(tok.text)
        elif tok.kind == "ident" and kind == "stage":
            self.take()
            text = tok.text
        else:
            raise _error(tok.pos, f"type mismatch: {name!r} takes a quoted text, got {_show(tok)}")
        if kind == "stage":
            text = text.lower()
            if text not in STAGE_NAMES:
                raise _error(tok.pos, f"unknown stage {text!r} (one of {', '.join(STAGE_NAMES)})")
        return text

    def parse_time(self, name: str) -> TimeValue:
        tok = self.peek()
        if tok.kind != "ident" or tok.text.lower() != "now":
            raise _error(
                tok.pos,
                f"type mismatch: {name!r} is a time, expected now or now-<N><d|h|m|w>, "
                f"got {_show(tok)}",
            )
        self.take()
        sign_tok = self.peek()
        if sign_tok.kind != "sign":
            return TimeValue(0.0)
        self.take()
        dur = self.peek()
        if dur.kind != "duration":
            raise _error(
                dur.pos, f"malformed time window: expected <N><d|h|m|w> after now{sign_tok.text}"
            )
        self.take()
        m = re.fullmatch(r"(\d+(?:\.\d+)?)([A-Za-z]+)", dur.text)
        assert m is not None
        unit = m.group(2).lower()
        if unit not in UNITS:
            raise _error(
                dur.pos, f"malformed time window: unknown unit {m.group(2)!r} (use d, h, m or w)"
            )
        seconds = float(m.group(1)) * UNITS[unit]
        if seconds > 100 * 365 * 86400:
            raise _error(dur.pos, "malformed time window: more than 100 years")
        return TimeValue(seconds if sign_tok.text == "+" else -seconds)


def _show(tok: Token) -> str:
    return "the end" if tok.kind == "end" else repr(tok.text)


def _unquote(text: str) -> str:
    body = text[1:-1]
    return re.sub(r"\\(.)", r"\1", body)


def parse(expression: str) -> Node:
    """The validated syntax tree; InvalidArgument naming the position otherwise."""
    if not expression or not expression.strip():
        raise InvalidArgument("an expression is required", field="expression")
    if len(expression) > MAX_LENGTH:
        raise InvalidArgument(f"must be at most {MAX_LENGTH} characters", field="expression")
    return _Parser(expression).parse()
