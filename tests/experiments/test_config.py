"""Configs are validated eagerly, naming the field, the bad value and what is accepted."""

import json

import pytest

from inertia.experiments.config import Config, ConfigError, from_dict, load, parse_value, set_dotted


def _base():
    return Config().to_dict()


@pytest.mark.parametrize(
    "key,value,match",
    [
        ("optimizer.lr", -0.1, r"optimizer.lr must be in \[0, inf\], got -0.1"),
        ("optimizer.momentum", 1.0, r"optimizer.momentum must be in \[0, 1\), got 1.0"),
        ("optimizer.name", "adam", r"optimizer.name must be one of .*'momentum'.*got 'adam'"),
        ("loss", "hinge", r"loss must be one of .*got 'hinge'"),
        ("steps", 2.5, r"steps must be an integer, got 2.5"),
        ("batch_size", 0, r"batch_size must be in \[1, inf\], got 0"),
        ("optimizer.nesterov", "yes", r"optimizer.nesterov must be true or false"),
        ("schedule", {"name": "sutskever_momentum", "mu_max": 1.5}, r"schedule.mu_max must be in \[0, 1\), got 1.5"),
    ],
)
def test_bad_value_names_field_value_and_accepted(key, value, match):
    d = _base()
    set_dotted(d, key, value)
    with pytest.raises(ConfigError, match=match):
        from_dict(d)


def test_unknown_top_level_field_lists_accepted_fields():
    d = _base()
    d["stepz"] = 3
    with pytest.raises(ConfigError, match=r"unknown config field\(s\) \['stepz'\]; accepted: .*'steps'"):
        from_dict(d)


def test_unknown_optimizer_field_is_named_with_its_section():
    d = _base()
    d["optimizer"]["mu"] = 0.9
    with pytest.raises(ConfigError, match=r"optimizer.mu"):
        from_dict(d)


def test_missing_config_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load(tmp_path / "nope.yaml")


def test_json_yaml_and_python_configs_load_the_same(tmp_path):
    d = _base()
    d["optimizer"]["lr"] = 0.05
    (tmp_path / "c.json").write_text(json.dumps(d))
    import yaml

    (tmp_path / "c.yaml").write_text(yaml.safe_dump(d))
    (tmp_path / "c.py").write_text(f"def get_config():\n    return {d!r}\n")
    loaded = [load(tmp_path / f"c.{ext}") for ext in ("json", "yaml", "py")]
    assert loaded[0] == loaded[1] == loaded[2]
    assert loaded[0].optimizer.lr == 0.05


def test_overrides_use_dotted_keys():
    cfg = Config().replace(**{"optimizer.lr": 0.5, "schedule.name": "constant", "schedule.value": 0.9})
    assert cfg.optimizer.lr == 0.5 and cfg.schedule == {"name": "constant", "value": 0.9}


def test_parse_value_reads_numbers_booleans_and_lists():
    assert parse_value("0.01") == 0.01
    assert parse_value("true") is True
    assert parse_value("[1, 2]") == [1, 2]
    assert parse_value("glorot_uniform") == "glorot_uniform"


def test_missing_name_in_a_section_is_reported():
    d = _base()
    d["data"] = {"n": 10}
    with pytest.raises(ConfigError, match=r"data must be a mapping with a 'name', got \{'n': 10\}"):
        from_dict(d)
