"""Configs are validated eagerly, naming the field, the bad value and what is accepted."""

import json

import pytest

from inertia.experiments.config import Config, ConfigError, from_dict, load, parse_value, set_dotted


def _base():
    return Config().to_dict()


def _assert_refused(key, value, match):
    d = _base()
    set_dotted(d, key, value)
    with pytest.raises(ConfigError, match=match):
        from_dict(d)


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
    _assert_refused(key, value, match)


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


def _minimal():
    return {"data": {"name": "curves", "n": 20}, "model": {"name": "deep_autoencoder", "sizes": [784, 4]}}


def test_yaml_and_overrides_read_scientific_notation_as_numbers(tmp_path):
    import yaml

    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(_minimal()) + "optimizer: {lr: 1e-3, weight_decay: 2.5E-4}\n")
    cfg = load(path, {"optimizer.momentum": parse_value("5e-1")})
    assert (cfg.optimizer.lr, cfg.optimizer.weight_decay, cfg.optimizer.momentum) == (1e-3, 2.5e-4, 0.5)
    assert parse_value("1e3") == 1000.0 and parse_value("-1E-2") == -0.01 and parse_value("1e") == "1e"


def test_a_yaml_alias_bomb_is_refused_before_it_is_expanded(tmp_path):
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 9)]  # 9**9 values
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines) + "\n")
    assert path.stat().st_size < 600
    with pytest.raises(ConfigError, match=r"more than 100000 values \(after expanding YAML aliases\)"):
        load(path)


def test_a_config_file_must_set_data_and_model(tmp_path):
    (tmp_path / "empty.yaml").write_text("")
    with pytest.raises(ConfigError, match="a config must set data and model .*missing: data, model"):
        load(tmp_path / "empty.yaml")
    (tmp_path / "c.json").write_text('{"data": {"name": "curves"}}')
    with pytest.raises(ConfigError, match="missing: model"):
        load(tmp_path / "c.json")


def test_a_config_file_that_is_not_utf8_is_a_config_error(tmp_path):
    (tmp_path / "c.yaml").write_bytes("experiment: caf\xe9\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=r"not UTF-8 text \(byte 0xe9 at offset 15\)"):
        load(tmp_path / "c.yaml")


def test_a_python_config_that_raises_is_a_config_error(tmp_path):
    (tmp_path / "c.py").write_text("raise RuntimeError('boom')\n")
    with pytest.raises(ConfigError, match="c.py: raised RuntimeError: boom"):
        load(tmp_path / "c.py")


@pytest.mark.parametrize(
    "key,value,match",
    [
        ("steps", 10**30, "steps must fit in 64 bits, got an integer of 31 digits"),
        ("model.sizes", [784, 2**70], r"model.sizes\[1\] must fit in 64 bits"),
        ("seed", 2**32, r"seed must be in \[0, 4294967295\], got 4294967296"),
        ("seed", 2**70, "seed must fit in 64 bits"),
    ],
)
def test_huge_integers_are_refused_naming_the_field(key, value, match):
    _assert_refused(key, value, match)


@pytest.mark.parametrize(
    "key,value,match",
    [
        (
            "init.scheme",
            ["glorot_uniform"],
            r"init.scheme must be the name of an init scheme, got \['glorot_uniform'\]",
        ),
        ("monitor.quantities", [["layer_stats"]], r"monitor.quantities must be a list of names"),
        ("monitor.params", "0.weight", r"monitor.params must be a list of names, got '0.weight'"),
        ("loss", ["mse"], r"loss must be one of .*got \['mse'\]"),
        ("optimizer.name", ["sgd"], r"optimizer.name must be one of .*got \['sgd'\]"),
        ("schedule", {"name": ["constant"]}, r"schedule must be null or a mapping with a 'name'"),
    ],
)
def test_a_list_where_a_name_is_expected_is_a_config_error(key, value, match):
    _assert_refused(key, value, match)


@pytest.mark.parametrize(
    "key,value,match",
    [
        ("data.foo", 1, r"data 'curves': got an unexpected keyword argument 'foo'; accepted: n, seed, image_size"),
        ("model.foo", 1, r"model 'deep_autoencoder': got an unexpected keyword argument 'foo'; accepted: sizes"),
        ("init.foo", 1, r"init 'glorot_uniform': got an unexpected keyword argument 'foo'; accepted: gain"),
        ("init.generator", 1, r"init 'glorot_uniform': \['generator'\] are set by the run, not the config"),
        (
            "schedule",
            {"name": "sutskever_momentum", "mu_max": 0.9, "foo": 1},
            r"schedule 'sutskever_momentum': got an unexpected keyword argument 'foo'",
        ),
        ("data", {"name": "mnist"}, r"data 'mnist': missing a required argument: 'path'; accepted: path"),
    ],
)
def test_keywords_of_data_model_init_and_schedules_are_checked_without_building(key, value, match):
    _assert_refused(key, value, match)


@pytest.mark.parametrize("value", ["..", ".", "", "a/b", "a\\b", "a\0b", 3, None])
def test_an_experiment_must_be_a_single_folder_name(value):
    from inertia.experiments.config import check_path_component

    d = _base()
    d["experiment"] = value
    with pytest.raises(ConfigError, match=r"experiment must be a single folder name"):
        from_dict(d)
    with pytest.raises(ConfigError, match=r"--run-id must be a single folder name"):
        check_path_component("--run-id", value)
    assert check_path_component("--name", "sweep-1.a_b") == "sweep-1.a_b"


@pytest.mark.parametrize(
    "device,match",
    [
        ("tpu", "device must be cpu, cuda, cuda:N or mps, got 'tpu'"),
        ("cuda:x", "got 'cuda:x'"),
        ("cpu:", "got 'cpu:'"),
        (["cpu"], "got"),
    ],
)
def test_a_device_must_be_a_torch_device_name(device, match):
    d = _base()
    d["device"] = device
    with pytest.raises(ConfigError, match=match):
        from_dict(d)


def test_check_device_refuses_a_device_this_machine_does_not_have():
    import torch

    from inertia.experiments.config import check_device

    check_device("cpu")
    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    with pytest.raises(ConfigError, match=rf"device 'cuda:{n}': this machine has {n} CUDA device\(s\)"):
        check_device(f"cuda:{n}")
