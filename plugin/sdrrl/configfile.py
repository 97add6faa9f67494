"""Config files and dataclass configs: one reader and one strict builder for every command.

Unknown keys are errors, not silently ignored: a typo in a threshold would otherwise cost a
translation run or a training run.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Mapping

from sdrrl.errors import SdrrlError


def read_mapping(path: str | Path, what: str = "Config file") -> dict[str, Any]:
    """A YAML (or ``.json``) file whose top level is a mapping; clear errors otherwise."""
    p = Path(path)
    if not p.is_file():
        raise SdrrlError(f"{what} not found: {str(p)!r}.", "check the path (e.g. the one given to --config).")
    text = p.read_text(encoding="utf-8")
    try:
        if p.suffix == ".json":
            data = json.loads(text)
        else:
            import yaml

            data = yaml.safe_load(text)
    except Exception as err:  # yaml.YAMLError / json.JSONDecodeError: both mean "cannot parse"
        detail = " ".join(str(err).split())  # YAML errors span lines; ours are one line
        raise SdrrlError(f"Cannot parse {str(p)!r}: {detail}.", "fix the YAML/JSON syntax.") from None
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise SdrrlError(f"{p}: expected a mapping at the top level, got {type(data).__name__}.",
                         "write the config as key: value pairs.")
    return data


class ConfigError(SdrrlError):
    """Every problem found in a config, reported together: ``problems`` holds one :class:`SdrrlError`
    per problem and :meth:`lines` one line each (the CLI prints them one per line). ``str(err)`` stays
    one line (the problems joined by `` | ``)."""

    def __init__(self, problems: list[SdrrlError], source: str | None = None):
        self.problems = list(problems)
        self.source = source
        prefix = f"{source}: " if source else ""
        if len(self.problems) == 1:
            only = self.problems[0]
            super().__init__(prefix + only.problem, only.fix)
        else:
            super().__init__(f"{prefix}{len(self.problems)} problems: "
                             + " | ".join(str(p) for p in self.problems))

    def lines(self) -> list[str]:
        prefix = f"{self.source}: " if self.source else ""
        return [prefix + str(p) for p in self.problems]

    def with_source(self, source: str) -> "ConfigError":
        return ConfigError(self.problems, source)


def raise_problems(problems: list[SdrrlError], source: str | None = None) -> None:
    """Raise every problem at once (nested ConfigErrors are flattened); nothing when the list is empty."""
    flat: list[SdrrlError] = []
    for p in problems:
        flat.extend(p.problems if isinstance(p, ConfigError) else [p])
    if flat:
        raise ConfigError(flat, source)


@dataclasses.dataclass(frozen=True)
class Range:
    """Allowed interval of a number: ``low``/``high`` (None = unbounded), open or closed ends."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def __contains__(self, value: float) -> bool:
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        if self.high is not None and (value >= self.high if self.high_open else value > self.high):
            return False
        return True

    def __str__(self) -> str:
        if self.high is None:
            return f"{'>' if self.low_open else '>='} {_num(self.low)}"
        return (f"{'(' if self.low_open else '['}{_num(self.low)}, {_num(self.high)}"
                f"{')' if self.high_open else ']'}")


def _num(x: float | None) -> str:
    return "-inf" if x is None else (str(int(x)) if float(x).is_integer() else str(x))


PROBABILITY = Range(0.0, 1.0)          # probabilities and thresholds on [0, 1] scores
POSITIVE = Range(0, None, low_open=True)
AT_LEAST_ONE = Range(1, None)          # sizes and counts
NON_NEGATIVE = Range(0, None)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "a list",
            dict: "a mapping", tuple: "a list"}.get(type(value), type(value).__name__)


def check_type(key: str, value: Any, hint: Any) -> tuple[Any, SdrrlError | None]:
    """``value`` checked against the annotation ``hint`` with YAML's types, never converted from a
    string: (the value, possibly int->float or list->tuple, None) or (None, the problem)."""
    import types
    import typing

    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None, None
        inner = [a for a in args if a is not type(None)]
        if len(inner) == 1:
            value, err = check_type(key, value, inner[0])
            if err is not None and type(None) in args:
                err = SdrrlError(err.problem, (err.fix or "") + " (or null for the default behaviour)")
            return value, err
        return value, None  # unions of several types are left to the config's own checks
    bad = f"{key} = {_shown(value)} is {_type_name(value)}"
    if hint is bool:
        if isinstance(value, bool):
            return value, None
        return None, SdrrlError(f"{bad}, not a boolean.", "write true or false without quotes (a YAML boolean).")
    if hint is int or hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            fix = "write a number without quotes"
            if isinstance(value, str):
                try:
                    number = float(value)
                    fix = f"write {value.strip()} without quotes" if "e" not in value.lower() else \
                        f"write it as {number!r} (YAML reads 1e-3 without a dot as a string; 1.0e-3 is a number)"
                except ValueError:
                    pass
            kind = "an integer" if hint is int else "a number"
            return None, SdrrlError(f"{bad}, not {kind}.", fix + ".")
        if hint is int and not isinstance(value, int):
            if float(value).is_integer():
                return None, SdrrlError(f"{bad}, not an integer.", f"write {int(value)}.")
            return None, SdrrlError(f"{bad}, not an integer.", "write a whole number.")
        return (float(value) if hint is float else value), None
    if hint is str:
        if isinstance(value, str):
            return value, None
        return None, SdrrlError(f"{bad}, not a string.", f"write it in quotes, e.g. {key.rsplit('.', 1)[-1]}: "
                                f"\"{value}\"." if isinstance(value, (int, float)) else "write a string.")
    if origin in (list, tuple) or hint in (list, tuple):
        if not isinstance(value, (list, tuple)):
            return None, SdrrlError(f"{bad}, not a list.", f"write a YAML list, e.g. {key.rsplit('.', 1)[-1]}: [a, b].")
        item_hint = args[0] if args else None
        if item_hint is not None and item_hint is not Ellipsis:
            out = []
            for i, item in enumerate(value):
                item, err = check_type(f"{key}[{i}]", item, item_hint)
                if err is not None:
                    return None, err
                out.append(item)
            value = out
        return value, None
    return value, None


def check_range(key: str, value: Any, allowed: Range, default: Any = dataclasses.MISSING) -> SdrrlError | None:
    """A problem when the number ``value`` lies outside ``allowed``."""
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)) or value in allowed:
        return None
    paper = "" if default is dataclasses.MISSING or default is None else f" (default {default})"
    if allowed == PROBABILITY:
        problem = "is not a score in [0, 1]" if "threshold" in key else "is not a probability"
        what = "a value in [0, 1]"
    elif allowed == AT_LEAST_ONE:
        problem, what = "is not a positive integer", "a whole number >= 1"
    else:
        problem, what = f"is out of range ({allowed})", f"a value {allowed}"
    return SdrrlError(f"{key} = {_shown(value)} {problem}.", f"use {what}{paper}.")


def check_ranges(obj: Any, ranges: Mapping[str, Range], problems: list[SdrrlError]) -> None:
    """Range problems of an already built config object (``ranges`` keys are dotted attribute paths)."""
    for key, allowed in ranges.items():
        value = obj
        for part in key.split("."):
            value = getattr(value, part, None)
        err = check_range(key, value, allowed)
        if err is not None:
            problems.append(err)


def validate(obj: Any, ranges: Mapping[str, Range]) -> Any:
    """Every problem of a built config at once: ``ranges`` plus the object's own ``check(problems)``
    (types are checked when a mapping is read). Returns ``obj``; raises a :class:`ConfigError`."""
    problems: list[SdrrlError] = []
    check_ranges(obj, ranges, problems)
    obj.check(problems)
    raise_problems(problems)
    return obj


def build(cls: type, data: Any, where: str = "", sections: Mapping[str, type] | None = None,
          lists_as_tuples: bool = False, problems: list[SdrrlError] | None = None,
          ranges: Mapping[str, Range] | None = None) -> Any:
    """``cls(**data)`` for a dataclass, refusing unknown keys; ``sections`` map keys to nested dataclasses.

    Every value is checked against its field's annotation (YAML booleans for ``bool``, numbers for
    ``int``/``float``, strings for ``str``; nothing is converted from a string) and against
    ``ranges`` (``{"section.key": Range}``). With ``problems`` given, every problem is appended to
    it and the field keeps its default, so the caller can add its own checks and report all at
    once; without it the problems are raised together as a :class:`ConfigError`.
    """
    own = problems is None
    problems = [] if own else problems
    label = where.rstrip(".") or "the config"
    if not isinstance(data, Mapping):
        err = SdrrlError(f"{label}: expected a mapping, got {type(data).__name__}.",
                         "write it as YAML key: value pairs.")
        if own:
            raise_problems([err])
        problems.append(err)
        return cls()
    import typing

    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    known = list(fields)
    unknown = sorted(set(data) - set(known), key=str)
    if unknown:
        problems.append(SdrrlError(f"Unknown config key(s) {', '.join(where + str(k) for k in unknown)}.",
                                   f"known keys{' in ' + label if where else ''}: {', '.join(known)}."))
    kwargs = {}
    for key, value in data.items():
        if key not in fields:
            continue
        name = where + key
        if sections and key in sections:
            kwargs[key] = build(sections[key], value or {}, f"{name}.", None, lists_as_tuples, problems, ranges)
            continue
        raw = value
        value, err = check_type(name, value, hints.get(key, Any))
        if err is None and ranges and name in ranges:
            f = fields[key]
            err = check_range(name, raw, ranges[name],
                              f.default if f.default is not dataclasses.MISSING else dataclasses.MISSING)
        if err is not None:
            problems.append(err)
            continue  # the field keeps its default; the problem is reported
        if lists_as_tuples and isinstance(value, list):
            value = tuple(value)
        kwargs[key] = value
    if own:
        raise_problems(problems)
    return cls(**kwargs)
