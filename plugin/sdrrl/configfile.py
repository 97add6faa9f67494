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


def build(cls: type, data: Any, where: str = "", sections: Mapping[str, type] | None = None,
          lists_as_tuples: bool = False) -> Any:
    """``cls(**data)`` for a dataclass, refusing unknown keys; ``sections`` map keys to nested dataclasses."""
    label = where.rstrip(".") or "the config"
    if not isinstance(data, Mapping):
        raise SdrrlError(f"{label}: expected a mapping, got {type(data).__name__}.",
                         "write it as YAML key: value pairs.")
    known = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise SdrrlError(f"Unknown config key(s) {', '.join(where + k for k in unknown)}.",
                         f"known keys{' in ' + label if where else ''}: {', '.join(known)}.")
    kwargs = {}
    for key, value in data.items():
        if sections and key in sections:
            value = build(sections[key], value or {}, f"{where}{key}.", None, lists_as_tuples)
        elif lists_as_tuples and isinstance(value, list):
            value = tuple(value)
        kwargs[key] = value
    return cls(**kwargs)
