"""The 18 intrinsic functions of ASL's JSONPath mode (`"key.$": "States.Format('{}', $.a)"`).

`parse` turns the text into a call tree once (the validator calls it, so a bad call is an
InvalidDefinition at creation); `evaluate` runs a tree against the state's data. Arguments
are string literals in single quotes (escapes `\\'`, `\\{`, `\\}`, `\\\\`), numbers, true/false/null,
paths (`$.a`, `$$.Execution.Id`) or nested calls. A function given arguments it cannot use
fails the state with States.IntrinsicFailure, as Step Functions does.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import random
import uuid
from typing import Any

from runner.errors import WorkflowFailure
from runner.workflows import paths

FUNCTIONS = (
    "States.Format", "States.StringToJson", "States.JsonToString", "States.Array",
    "States.ArrayPartition", "States.ArrayContains", "States.ArrayRange", "States.ArrayGetItem",
    "States.ArrayLength", "States.ArrayUnique", "States.Base64Encode", "States.Base64Decode",
    "States.Hash", "States.JsonMerge", "States.MathRandom", "States.MathAdd",
    "States.StringSplit", "States.UUID",
)
HASHES = {"MD5": "md5", "SHA-1": "sha1", "SHA-256": "sha256", "SHA-384": "sha384",
          "SHA-512": "sha512"}


class Call:
    __slots__ = ("name", "args")

    def __init__(self, name: str, args: list) -> None:
        self.name, self.args = name, args


class Path:
    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


class IntrinsicSyntaxError(ValueError):
    pass


@functools.lru_cache(maxsize=2048)
def parse(text: str) -> Call:
    p = _Parser(text)
    call = p.call()
    p.skip()
    if p.i != len(text):
        raise IntrinsicSyntaxError(f"{text!r}: unexpected {text[p.i:]!r} after the call")
    return call


class _Parser:
    def __init__(self, text: str) -> None:
        self.t, self.i = text, 0

    def skip(self) -> None:
        while self.i < len(self.t) and self.t[self.i].isspace():
            self.i += 1

    def call(self) -> Call:
        self.skip()
        j = self.t.find("(", self.i)
        if j < 0:
            raise IntrinsicSyntaxError(f"{self.t!r}: expected States.Name(...)")
        name = self.t[self.i:j].strip()
        if name not in FUNCTIONS:
            raise IntrinsicSyntaxError(f"{self.t!r}: {name!r} is not an intrinsic function; "
                                       f"use one of {', '.join(FUNCTIONS)}")
        self.i = j + 1
        args: list = []
        self.skip()
        if self.i < len(self.t) and self.t[self.i] == ")":
            self.i += 1
            return Call(name, args)
        while True:
            args.append(self.arg())
            self.skip()
            if self.i >= len(self.t):
                raise IntrinsicSyntaxError(f"{self.t!r}: missing ')'")
            c = self.t[self.i]
            self.i += 1
            if c == ")":
                return Call(name, args)
            if c != ",":
                raise IntrinsicSyntaxError(f"{self.t!r}: expected ',' or ')' at {self.i - 1}")

    def arg(self):
        self.skip()
        t, i = self.t, self.i
        if t.startswith("States.", i):
            return self.call()
        if i < len(t) and t[i] == "'":
            out, i = [], i + 1
            while i < len(t) and t[i] != "'":
                if t[i] == "\\" and i + 1 < len(t):
                    out.append(t[i:i + 2] if t[i + 1] in "{}" else t[i + 1])
                    i += 2
                else:
                    out.append(t[i])
                    i += 1
            if i >= len(t):
                raise IntrinsicSyntaxError(f"{t!r}: unterminated string")
            self.i = i + 1
            return "".join(out)
        j = i
        depth = 0
        while j < len(t) and (depth or t[j] not in ",)"):
            depth += {"[": 1, "(": 1, "]": -1, ")": -1}.get(t[j], 0)
            j += 1
        token = t[i:j].strip()
        self.i = j
        if token.startswith("$"):
            try:
                paths.compile_path(token)
            except paths.PathError as exc:
                raise IntrinsicSyntaxError(str(exc)) from None
            return Path(token)
        try:
            return json.loads(token)
        except ValueError:
            raise IntrinsicSyntaxError(f"{t!r}: {token!r} is not a string, number, boolean, "
                                       "null, path or call") from None


def evaluate(text: str, data: Any, context: Any) -> Any:
    try:
        return _eval(parse(text), data, context)
    except IntrinsicSyntaxError as exc:
        raise WorkflowFailure("States.IntrinsicFailure", str(exc)) from None


def _eval(call: Call, data: Any, context: Any) -> Any:
    args = []
    for a in call.args:
        if isinstance(a, Call):
            args.append(_eval(a, data, context))
        elif isinstance(a, Path):
            args.append(paths.select(a.text, data, context))
        else:
            args.append(a)
    try:
        return _IMPL[call.name](*args)
    except WorkflowFailure:
        raise
    except (TypeError, ValueError, KeyError, IndexError, ZeroDivisionError) as exc:
        raise WorkflowFailure("States.IntrinsicFailure",
                              f"{call.name} cannot be applied to {_short(args)}: {exc}") from None


def _short(args) -> str:
    text = json.dumps(args, default=str)
    return text if len(text) < 200 else text[:200] + "..."


def _need(cond: bool, message: str) -> None:
    if not cond:
        raise ValueError(message)


def _int(x) -> int:
    _need(isinstance(x, (int, float)) and not isinstance(x, bool) and float(x).is_integer(),
          f"{x!r} is not an integer")
    return int(x)


def _format(template, *values):
    _need(isinstance(template, str), "the template must be a string")
    out, i, n = [], 0, 0
    while i < len(template):
        c = template[i]
        if c == "\\" and i + 1 < len(template) and template[i + 1] in "{}\\'":
            out.append(template[i + 1])
            i += 2
        elif template.startswith("{}", i):
            _need(n < len(values), "more {} than arguments")
            v = values[n]
            _need(not isinstance(v, (dict, list)), "States.Format interpolates strings, "
                  "numbers, booleans and null only; use States.JsonToString for JSON")
            out.append(v if isinstance(v, str) else json.dumps(v, separators=(",", ":")))
            n += 1
            i += 2
        else:
            out.append(c)
            i += 1
    _need(n == len(values), "more arguments than {}")
    return "".join(out)


def _partition(arr, size):
    _need(isinstance(arr, list), "the first argument must be an array")
    size = _int(size)
    _need(size > 0, "the chunk size must be positive")
    return [arr[i:i + size] for i in range(0, len(arr), size)]


def _range(start, end, step):
    start, end, step = _int(start), _int(end), _int(step)
    _need(step != 0, "the step must not be 0")
    out = list(range(start, end + (1 if step > 0 else -1), step))
    _need(len(out) <= 1000, "at most 1000 elements")
    return out


def _unique(arr):
    _need(isinstance(arr, list), "the argument must be an array")
    seen, out = set(), []
    for v in arr:
        key = json.dumps(v, sort_keys=True)
        if key not in seen:
            seen.add(key)
            out.append(v)
    return out


def _hash(value, algorithm):
    _need(algorithm in HASHES, f"the algorithm must be one of {', '.join(HASHES)}")
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
    return hashlib.new(HASHES[algorithm], text.encode()).hexdigest()


def _merge(a, b, deep):
    _need(isinstance(a, dict) and isinstance(b, dict), "both arguments must be objects")
    _need(deep is False, "only a shallow merge (false) is supported, as in Step Functions")
    return {**a, **b}


def _random(start, end, seed=None):
    start, end = _int(start), _int(end)
    rng = random.Random(_int(seed)) if seed is not None else random
    return rng.randint(start, end)


def _add(a, b):
    return _int(a) + _int(b)


def _split(text, sep):
    _need(isinstance(text, str) and isinstance(sep, str), "both arguments must be strings")
    out, cur = [], []
    for ch in text:
        if ch in sep:
            if cur:
                out.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    if cur:
        out.append("".join(cur))
    return out


def _get_item(arr, index):
    _need(isinstance(arr, list), "the first argument must be an array")
    return arr[_int(index)]


def _contains(arr, value):
    _need(isinstance(arr, list), "the first argument must be an array")
    return value in arr


def _str(x):
    _need(isinstance(x, str), "the argument must be a string")
    return x


_IMPL = {
    "States.Format": _format,
    "States.StringToJson": lambda s: json.loads(_str(s)),
    "States.JsonToString": lambda v: json.dumps(v, separators=(",", ":")),
    "States.Array": lambda *a: list(a),
    "States.ArrayPartition": _partition,
    "States.ArrayContains": _contains,
    "States.ArrayRange": _range,
    "States.ArrayGetItem": _get_item,
    "States.ArrayLength": lambda a: len(a) if isinstance(a, list) else _need(False, "not an array"),
    "States.ArrayUnique": _unique,
    "States.Base64Encode": lambda s: base64.b64encode(_str(s).encode()).decode(),
    "States.Base64Decode": lambda s: base64.b64decode(_str(s), validate=True).decode(),
    "States.Hash": _hash,
    "States.JsonMerge": _merge,
    "States.MathRandom": _random,
    "States.MathAdd": _add,
    "States.StringSplit": _split,
    "States.UUID": lambda: str(uuid.uuid4()),
}
