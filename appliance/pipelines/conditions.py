"""The CEL subset that kfp compiles: `triggerPolicy.condition` and `parameterExpressionSelector`.

Called by `engine` to decide whether a `dsl.If/Elif/Else` branch runs and to pick a field out of a
ParallelFor item. kfp emits a small, regular subset of CEL, e.g.

    int(inputs.parameter_values['pipelinechannel--total-sum']) > 10
    !(inputs.parameter_values['pipelinechannel--flag'] == true) && ...
    parseJson(string_value)["a"]

so this is a small tokenizer and recursive-descent evaluator for exactly that: literals, `!`, `-`,
`&&`, `||`, comparisons, `in`, `+`, indexing, field access, and the functions int, double,
string, bool, size and parseJson. Anything else is an `InvalidPipeline` naming the expression.
"""

from __future__ import annotations

import json
import operator
import re
from collections.abc import Callable, Mapping
from typing import Any

from appliance.pipelines import errors, executor_input

_TOKEN = re.compile(
    r"""\s*(?:
    (?P<number>\d+\.\d*(?:[eE][-+]?\d+)?|\d+(?:[eE][-+]?\d+)?)
  | (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
  | (?P<op>&&|\|\||==|!=|<=|>=|[<>!()\[\].,+\-*/])
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
)""",
    re.VERBOSE,
)


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    text = text.rstrip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise _error(text, f"unexpected character {text[pos:].strip()[:1]!r}")
        kind = match.lastgroup or ""
        out.append((kind, match.group(kind)))
        pos = match.end()
    return out


def _error(expression: str, why: str) -> errors.InvalidPipeline:
    return errors.InvalidPipeline(
        f"cannot evaluate condition {expression!r}: {why}",
        hint="only the CEL that the kfp SDK compiles (dsl.If/Elif/Else, ParallelFor item fields) is supported",
    )


def _to_int(value: Any) -> int:
    if isinstance(value, str):
        value = value.strip()
        return int(float(value)) if re.fullmatch(r"-?\d+\.0*", value) else int(value)
    return int(value)


def _to_bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return bool(value)


def _parse_json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


FUNCTIONS: dict[str, Callable[[Any], Any]] = {
    "int": _to_int,
    "double": float,
    "string": executor_input.format_parameter,
    "bool": _to_bool,
    "size": len,
    "parseJson": _parse_json,
}


_COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "in": lambda left, right: left in right,
}


class _Parser:
    def __init__(self, expression: str, names: Mapping[str, Any]) -> None:
        self.expression = expression
        self.tokens = _tokens(expression)
        self.pos = 0
        self.names = names

    def peek(self) -> str:
        return self.tokens[self.pos][1] if self.pos < len(self.tokens) else ""

    def take(self, expected: str | None = None) -> tuple[str, str]:
        if self.pos >= len(self.tokens):
            raise _error(self.expression, "unexpected end")
        token = self.tokens[self.pos]
        if expected is not None and token[1] != expected:
            raise _error(self.expression, f"expected {expected!r}, found {token[1]!r}")
        self.pos += 1
        return token

    def parse(self) -> Any:
        value = self.or_()
        if self.pos != len(self.tokens):
            raise _error(self.expression, f"unexpected {self.peek()!r}")
        return value

    def or_(self) -> Any:
        value = self.and_()
        while self.peek() == "||":
            self.take()
            right = self.and_()
            value = _to_bool_strict(value, self.expression) or _to_bool_strict(right, self.expression)
        return value

    def and_(self) -> Any:
        value = self.compare()
        while self.peek() == "&&":
            self.take()
            right = self.compare()
            value = _to_bool_strict(value, self.expression) and _to_bool_strict(right, self.expression)
        return value

    def compare(self) -> Any:
        left = self.additive()
        op = self.peek()
        if op in ("==", "!=", "<", "<=", ">", ">=", "in"):
            self.take()
            right = self.additive()
            try:
                return _COMPARE[op](left, right)
            except TypeError as exc:
                raise _error(self.expression, f"cannot compare {left!r} {op} {right!r}") from exc
        return left

    def additive(self) -> Any:
        value = self.unary()
        while self.peek() in ("+", "-"):
            op = self.take()[1]
            right = self.unary()
            try:
                value = value + right if op == "+" else value - right
            except TypeError as exc:
                raise _error(self.expression, f"cannot compute {value!r} {op} {right!r}") from exc
        return value

    def unary(self) -> Any:
        if self.peek() == "!":
            self.take()
            return not _to_bool_strict(self.unary(), self.expression)
        if self.peek() == "-":
            self.take()
            return -self.unary()
        return self.postfix()

    def postfix(self) -> Any:
        value = self.primary()
        while self.peek() in ("[", "."):
            if self.take()[1] == "[":
                key = self.or_()
                self.take("]")
                value = self._index(value, key)
            else:
                kind, name = self.take()
                if kind != "name":
                    raise _error(self.expression, f"expected a field name, found {name!r}")
                value = self._index(value, name)
        return value

    def _index(self, value: Any, key: Any) -> Any:
        try:
            return value[key]
        except (KeyError, IndexError, TypeError) as exc:
            raise _error(self.expression, f"{key!r} is not available") from exc

    def primary(self) -> Any:
        kind, text = self.take()
        if kind == "number":
            return float(text) if any(c in text for c in ".eE") else int(text)
        if kind == "string":
            return json.loads('"' + text[1:-1].replace('"', '\\"').replace("\\'", "'") + '"')
        if text == "(":
            value = self.or_()
            self.take(")")
            return value
        if text == "[":
            items = []
            while self.peek() != "]":
                items.append(self.or_())
                if self.peek() == ",":
                    self.take()
            self.take("]")
            return items
        if kind == "name":
            if text in ("true", "false"):
                return text == "true"
            if text == "null":
                return None
            if self.peek() == "(":
                if text not in FUNCTIONS:
                    raise _error(self.expression, f"unknown function {text}()")
                self.take("(")
                argument = self.or_()
                self.take(")")
                try:
                    return FUNCTIONS[text](argument)
                except (TypeError, ValueError) as exc:
                    raise _error(self.expression, f"{text}({argument!r}) failed: {exc}") from exc
            if text in self.names:
                return self.names[text]
            raise _error(self.expression, f"unknown name {text!r}")
        raise _error(self.expression, f"unexpected {text!r}")


def _to_bool_strict(value: Any, expression: str) -> bool:
    if isinstance(value, bool):
        return value
    raise _error(expression, f"{value!r} is not a boolean")


def evaluate(expression: str, names: Mapping[str, Any]) -> Any:
    """Evaluate a CEL expression over `names` (e.g. {"inputs": {"parameter_values": {...}}})."""
    return _Parser(expression, names).parse()


def condition_holds(expression: str, parameter_values: Mapping[str, Any]) -> bool:
    """A task's `triggerPolicy.condition` over its resolved input parameters."""
    result = evaluate(expression, {"inputs": {"parameter_values": dict(parameter_values)}})
    return _to_bool_strict(result, expression)


def select(selector: str, value: Any) -> Any:
    """Apply a `parameterExpressionSelector` (`parseJson(string_value)["a"]`) to a parameter value."""
    string_value = value if isinstance(value, str) else json.dumps(value)
    return evaluate(selector, {"string_value": string_value})
