"""The shared config reader/builder behind `sdrrl build`, `sdrrl export` and `sdrrl train`."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from sdrrl import configfile
from sdrrl.errors import SdrrlError


@dataclass
class Inner:
    p: float = 0.15
    names: tuple = ()


@dataclass
class Outer:
    seed: int = 1
    inner: Inner = field(default_factory=Inner)


def test_read_mapping_reads_yaml_and_json_and_names_bad_files(tmp_path):
    (tmp_path / "a.yaml").write_text("seed: 3\ninner: {p: 0.5}\n")
    (tmp_path / "b.json").write_text('{"seed": 4}')
    assert configfile.read_mapping(tmp_path / "a.yaml") == {"seed": 3, "inner": {"p": 0.5}}
    assert configfile.read_mapping(tmp_path / "b.json") == {"seed": 4}
    (tmp_path / "empty.yaml").write_text("")
    assert configfile.read_mapping(tmp_path / "empty.yaml") == {}
    with pytest.raises(SdrrlError, match="Recipe not found: .*nope.yaml"):
        configfile.read_mapping(tmp_path / "nope.yaml", what="Recipe")
    (tmp_path / "bad.yaml").write_text("seed: [1,\n")
    with pytest.raises(SdrrlError, match="Cannot parse .*bad.yaml.*Fix: fix the YAML/JSON syntax") as err:
        configfile.read_mapping(tmp_path / "bad.yaml")
    assert "\n" not in str(err.value)  # one line
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(SdrrlError, match="expected a mapping at the top level, got list"):
        configfile.read_mapping(tmp_path / "list.yaml")


def test_build_refuses_unknown_keys_at_every_level_and_converts_lists():
    cfg = configfile.build(Outer, {"seed": 2, "inner": {"names": ["a", "b"]}}, "", {"inner": Inner},
                           lists_as_tuples=True)
    assert cfg == Outer(2, Inner(0.15, ("a", "b")))
    with pytest.raises(SdrrlError, match=r"Unknown config key\(s\) sed\. Fix: known keys: seed, inner"):
        configfile.build(Outer, {"sed": 2}, "", {"inner": Inner})
    with pytest.raises(SdrrlError, match=r"Unknown config key\(s\) inner\.q\. Fix: known keys in inner: p, names"):
        configfile.build(Outer, {"inner": {"q": 1}}, "", {"inner": Inner})
    with pytest.raises(SdrrlError, match="inner: expected a mapping, got int"):
        configfile.build(Outer, {"inner": 5}, "", {"inner": Inner})
