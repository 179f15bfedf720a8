"""Configuration: defaults < YAML file < environment < flags, and clear errors naming the source."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance import config, errors


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config" / "odh-appliance" / "config.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_defaults_are_safe() -> None:
    loaded = config.load(environ={})
    cfg = loaded.config
    assert cfg.bind_address == "127.0.0.1"
    assert cfg.provider == "kind"
    assert cfg.components["workbenches"] is True
    assert cfg.components["ray"] is False
    assert loaded.file is None
    assert loaded.sources == {}


def test_precedence_file_then_env_then_flag(tmp_path: Path) -> None:
    write_config(tmp_path, "cluster_name: from-file\nports:\n  http: 1111\n  grpc: 2222\ngpu: off\n")
    env = {"ODH_APPLIANCE_CLUSTER_NAME": "from-env", "ODH_APPLIANCE_PORTS__HTTP": "3333"}

    only_file = config.load(environ={})
    assert only_file.config.cluster_name == "from-file"
    assert only_file.config.ports.http == 1111

    with_env = config.load(environ=env)
    assert with_env.config.cluster_name == "from-env"
    assert with_env.config.ports.http == 3333
    assert with_env.config.ports.grpc == 2222  # untouched nested value survives the env layer

    with_flags = config.load(environ=env, overrides=["ports.http=4444"], flags={"cluster_name": "from-flag"})
    assert with_flags.config.cluster_name == "from-flag"
    assert with_flags.config.ports.http == 4444
    assert with_flags.config.gpu == "off"
    assert with_flags.sources["cluster_name"] == "flag cluster_name"
    assert with_flags.sources["ports.http"] == "flag --set ports.http"
    assert with_flags.sources["ports.grpc"].startswith("file ")


def test_flag_none_does_not_override(tmp_path: Path) -> None:
    write_config(tmp_path, "cluster_name: from-file\n")
    assert config.load(environ={}, flags={"cluster_name": None}).config.cluster_name == "from-file"


def test_env_values_are_typed_and_components_merge_with_defaults() -> None:
    loaded = config.load(environ={"ODH_APPLIANCE_COMPONENTS__RAY": "true", "ODH_APPLIANCE_REGISTRIES": "a.io, b.io"})
    assert loaded.config.components["ray"] is True
    assert loaded.config.components["kserve"] is True
    assert loaded.config.registries == ["a.io", "b.io"]


def test_explicit_config_file(tmp_path: Path) -> None:
    other = tmp_path / "elsewhere.yaml"
    other.write_text("kubernetes_version: v1.33.4\n")
    loaded = config.load(config_file=other, environ={})
    assert loaded.config.kubernetes_version == "1.33.4"
    assert loaded.file == other


def test_env_names_config_file(tmp_path: Path) -> None:
    other = tmp_path / "via-env.yaml"
    other.write_text("cluster_name: via-env\n")
    assert config.load(environ={"ODH_APPLIANCE_CONFIG": str(other)}).config.cluster_name == "via-env"


def test_missing_explicit_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(errors.ConfigError, match="does not exist") as info:
        config.load(config_file=tmp_path / "nope.yaml", environ={})
    assert info.value.hint


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"environ": {"ODH_APPLIANCE_PORTS__HTTP": "lots"}}, "ports.http.*environment ODH_APPLIANCE_PORTS__HTTP"),
        ({"environ": {}, "overrides": ["gpu=maybe"]}, "invalid setting gpu.*flag --set gpu"),
        ({"environ": {}, "overrides": ["ports.http=70000"]}, "ports.http"),
        ({"environ": {}, "overrides": ["cluster_name=Not_Valid"]}, "cluster_name: must be lowercase"),
        ({"environ": {}, "overrides": ["kubernetes_version=latest"]}, "must look like 1.34.1"),
        ({"environ": {}, "overrides": ["colour=blue"]}, "unknown setting 'colour'"),
        ({"environ": {}, "overrides": ["ports.https=1"]}, "unknown setting 'ports.https'"),
        ({"environ": {}, "overrides": ["components.spaceship=true"]}, "unknown component 'spaceship'"),
        ({"environ": {}, "overrides": ["no-equals-sign"]}, "is not key=value"),
    ],
)
def test_bad_values_name_setting_and_source(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(errors.UsageError, match=message) as info:
        config.load(**kwargs)  # type: ignore[arg-type]
    assert info.value.hint
    assert info.value.exit_code == 2


def test_unknown_setting_hint_lists_known_ones() -> None:
    with pytest.raises(errors.ConfigError) as info:
        config.load(environ={}, overrides=["ports.https=1"])
    assert info.value.hint is not None
    assert "http, grpc, api_server" in info.value.hint


@pytest.mark.parametrize("text", ["cluster_name: [unclosed\n", "- just\n- a list\n"])
def test_bad_file_is_an_error(tmp_path: Path, text: str) -> None:
    path = write_config(tmp_path, text)
    with pytest.raises(errors.ConfigError, match=str(path)):
        config.load(environ={})


def test_paths_follow_xdg(tmp_path: Path) -> None:
    paths = config.Paths.from_environment()
    assert paths.config_dir == tmp_path / "config" / "odh-appliance"
    assert paths.data_dir == tmp_path / "data" / "odh-appliance"
    assert paths.cache_dir == tmp_path / "cache" / "odh-appliance"
    assert paths.bin_dir == paths.data_dir / "bin"


def test_yaml_round_trip(tmp_path: Path) -> None:
    cfg = config.load(environ={}, overrides=["cluster_name=demo", "ports.grpc=9999"]).config
    write_config(tmp_path, config.as_yaml(cfg))
    assert config.load(environ={}).config == cfg
