"""ASL's JSONPath data flow: paths, reference paths, payload templates and ResultPath.

JSONPath expressions are evaluated by jsonpath-ng (a maintained library); parsed expressions
are cached by text, since a workflow evaluates the same few paths on every execution.

* A *path* (InputPath, OutputPath, ItemsPath, `.$` values) may select several nodes (`$..a`,
  `$.a[*]`); ASL then yields the list of matches. A single, non-wildcard match yields the value.
* A *reference path* (ResultPath, Choice Variable) names one node only: no wildcards, filters
  or recursive descent.
* `$$` addresses the context object (execution, state, map item), not the state's input.
"""

from __future__ import annotations

import copy
import functools
import re
from typing import Any

from jsonpath_ng import exceptions as jp_exceptions
from jsonpath_ng.ext import parse as jp_parse

from runner.errors import WorkflowFailure

# A path is definite (one node) unless it contains one of these.
_INDEFINITE = re.compile(r"\[\s*\*\s*\]|\.\*|\.\.|\[\s*\?|\[[^\]]*[:,][^\]]*\]")


class PathError(ValueError):
    """A path that does not parse; the validator turns it into InvalidDefinition."""


@functools.lru_cache(maxsize=4096)
def compile_path(text: str):
    """The parsed expression for `text` (starting with `$`); PathError if it does not parse."""
    if not isinstance(text, str) or not text.startswith("$"):
        raise PathError(f"{text!r} is not a JSONPath (it must start with '$')")
    expr = text[1:] if text.startswith("$$") else text
    try:
        return jp_parse(expr)
    except (jp_exceptions.JsonPathParserError, jp_exceptions.JsonPathLexerError, Exception) as exc:
        raise PathError(f"{text!r} is not a valid JSONPath ({exc})") from None


def is_definite(text: str) -> bool:
    return _INDEFINITE.search(text) is None


def check_reference_path(text: str) -> None:
    """PathError unless `text` is a valid reference path (one node)."""
    compile_path(text)
    if not is_definite(text) or text.startswith("$$"):
        raise PathError(f"{text!r} is not a reference path: it must name exactly one node "
                        "(no '*', '..', filters, slices or '$$')")


def select(text: str, data: Any, context: Any = None, *, field: str = "path") -> Any:
    """The value `text` selects from `data` (or from `context` for `$$...`). A path that
    matches nothing fails the state with States.Runtime, as Step Functions does."""
    if text == "$":
        return data
    if text == "$$":
        return context
    root = context if text.startswith("$$") else data
    matches = compile_path(text).find(root)
    if is_definite(text):
        if not matches:
            raise WorkflowFailure("States.Runtime", f"An error occurred while executing the state. "
                                  f"The JSONPath '{text}' specified for the field '{field}' could "
                                  "not be found in the input")
        return matches[0].value
    return [m.value for m in matches]


def present(text: str, data: Any) -> bool:
    """Whether a (definite) path matches a node: Choice's IsPresent."""
    if text == "$":
        return True
    return bool(compile_path(text).find(data))


def set_result(data: Any, result_path: str | None, result: Any) -> Any:
    """The state's output before OutputPath: ResultPath null keeps the input, `$` replaces
    it, anything else writes `result` into a copy of the input, creating missing objects."""
    if result_path is None:
        return data
    if result_path == "$":
        return result
    out = copy.deepcopy(data)
    if not isinstance(out, dict):
        raise WorkflowFailure("States.Runtime", f"Unable to apply ResultPath '{result_path}' to "
                              "input that is not a JSON object")
    steps = _steps(result_path)
    node = out
    for i, step in enumerate(steps):
        last = i == len(steps) - 1
        if isinstance(step, int):
            if not isinstance(node, list) or step >= len(node):
                raise WorkflowFailure("States.Runtime",
                                      f"Unable to apply ResultPath '{result_path}': no index {step}")
            if last:
                node[step] = result
            else:
                node = node[step]
            continue
        if not isinstance(node, dict):
            raise WorkflowFailure("States.Runtime", f"Unable to apply ResultPath '{result_path}': "
                                  f"'{step}' is not inside an object")
        if last:
            node[step] = result
        else:
            if not isinstance(node.get(step), (dict, list)):
                node[step] = {}
            node = node[step]
    return out


_STEP_RE = re.compile(r"\.([A-Za-z_$][\w$-]*)|\['((?:[^'\\]|\\.)*)'\]|\[\"((?:[^\"\\]|\\.)*)\"\]|\[(\d+)\]")


def _steps(path: str) -> list[str | int]:
    rest = path[1:]
    steps: list[str | int] = []
    while rest:
        m = _STEP_RE.match(rest)
        if m is None:
            raise WorkflowFailure("States.Runtime", f"ResultPath '{path}' cannot be applied")
        if m.group(4) is not None:
            steps.append(int(m.group(4)))
        else:
            steps.append(next(g for g in m.groups()[:3] if g is not None))
        rest = rest[m.end():]
    return steps


def apply_template(template: Any, data: Any, context: Any, evaluate_intrinsic) -> Any:
    """A payload template (Parameters, ResultSelector, ItemSelector, Pass Result is literal):
    keys ending in `.$` are replaced by what their path or intrinsic function yields."""
    if isinstance(template, dict):
        out = {}
        for key, value in template.items():
            if key.endswith(".$") and isinstance(value, str):
                if value.startswith("States."):
                    out[key[:-2]] = evaluate_intrinsic(value, data, context)
                else:
                    out[key[:-2]] = select(value, data, context, field=key)
            else:
                out[key] = apply_template(value, data, context, evaluate_intrinsic)
        return out
    if isinstance(template, list):
        return [apply_template(v, data, context, evaluate_intrinsic) for v in template]
    return template


def input_path(path: Any, data: Any, context: Any) -> Any:
    """InputPath/OutputPath: absent means `$`, null means `{}`."""
    if path is None:
        return {}
    return select(path, data, context)
