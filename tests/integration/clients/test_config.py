"""Where the client's settings come from, and the channel options they become."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from copyloop_client import ClientConfig, ConfigError, RetryPolicy
from copyloop_client.channel import channel_options, service_config

PLATFORM = {  # as the main job writes it (python -m copyloop.main)
    "pid": 1,
    "triton_url": "127.0.0.1:8001",
    "model_dir": "/models/copywriter",
    "api_key": "platform-key",
    "addresses": {"profile": "p:1", "generation": "g:1", "prediction": "x:1", "fusion": "f:1"},
}


def test_defaults_are_the_main_jobs_ports(tmp_path: Path) -> None:
    config = ClientConfig.load(env={}, platform_file=tmp_path / "absent.json")
    assert config.addresses == {
        "profile": "127.0.0.1:50051",
        "generation": "127.0.0.1:50052",
        "prediction": "127.0.0.1:50053",
        "fusion": "127.0.0.1:50054",
    }
    assert config.api_key == "demo-key" and config.retry == RetryPolicy()


def test_sources_apply_in_order(tmp_path: Path) -> None:
    platform = tmp_path / "var" / "platform.json"
    platform.parent.mkdir()
    platform.write_text(json.dumps(PLATFORM))
    toml = tmp_path / "client.toml"
    toml.write_text(
        'timeout_s = 3.5\n[addresses]\nfusion = "file:2"\n'
        "[retry]\nmax_attempts = 5\ninitial_backoff_s = 0.2\nmax_backoff_s = 1\n"
    )
    env = {
        "COPYLOOP_PROFILE_ADDR": "env:3",
        "COPYLOOP_API_KEY": "env-key",
        "COPYLOOP_VAR_DIR": str(tmp_path / "var"),
    }

    from_platform = ClientConfig.load(env={"COPYLOOP_VAR_DIR": str(tmp_path / "var")})
    assert from_platform.api_key == "platform-key" and from_platform.addresses["fusion"] == "f:1"

    config = ClientConfig.load(toml, env=env)
    assert config.addresses == {
        "profile": "env:3",
        "generation": "g:1",
        "prediction": "x:1",
        "fusion": "file:2",
    }
    assert config.api_key == "env-key" and config.timeout_s == 3.5
    assert config.retry == RetryPolicy(max_attempts=5, initial_backoff_s=0.2, max_backoff_s=1.0)

    flags = config.with_overrides(
        addresses={"fusion": "flag:4", "profile": None}, api_key=None, timeout_s=1.0
    )
    assert flags.addresses["fusion"] == "flag:4" and flags.addresses["profile"] == "env:3"
    assert flags.api_key == "env-key" and flags.timeout_s == 1.0


def test_json_config_file(tmp_path: Path) -> None:
    path = tmp_path / "client.json"
    path.write_text(json.dumps({"api_key": "j", "addresses": {"generation": "gen:9"}}))
    config = ClientConfig.from_file(path)
    assert config.api_key == "j" and config.addresses["generation"] == "gen:9"


@pytest.mark.parametrize(
    ("content", "suffix", "message"),
    [
        ('{"api_key": 5}', ".json", "api_key must be a string"),
        ('{"adresses": {}}', ".json", "unknown key(s) adresses"),
        ('{"addresses": {"search": "s:1"}}', ".json", "unknown service(s) in addresses: search"),
        ("[retry]\nmax_attempts = 9\n", ".toml", "between 1 and 5"),
        ("[retry]\nmax_attempts = 2.5\n", ".toml", "whole number"),
        ("timeout_s = 'soon'\n", ".toml", "timeout_s must be a number"),
        ("not toml at all = = =", ".toml", "not valid TOML"),
    ],
)
def test_bad_config_names_the_file_and_the_problem(
    tmp_path: Path, content: str, suffix: str, message: str
) -> None:
    path = tmp_path / f"client{suffix}"
    path.write_text(content)
    with pytest.raises(ConfigError) as err:
        ClientConfig.from_file(path)
    assert message in str(err.value) and str(path) in str(err.value)


def test_bad_environment_value() -> None:
    with pytest.raises(ConfigError, match="COPYLOOP_TIMEOUT_S"):
        ClientConfig.from_env({"COPYLOOP_TIMEOUT_S": "ten"})


def test_retry_policy_becomes_a_grpc_service_config() -> None:
    policy = RetryPolicy(
        max_attempts=3, initial_backoff_s=0.05, max_backoff_s=0.4, backoff_multiplier=3
    )
    parsed = json.loads(service_config(policy))
    [method] = parsed["methodConfig"]
    assert {n["service"] for n in method["name"]} == {
        "copyloop.v1.ProfileService",
        "copyloop.v1.GenerationService",
        "copyloop.v1.PredictionService",
        "copyloop.v1.FusionService",
    }
    assert method["retryPolicy"] == {
        "maxAttempts": 3,
        "initialBackoff": "0.050s",
        "maxBackoff": "0.400s",
        "backoffMultiplier": 3,
        "retryableStatusCodes": ["UNAVAILABLE"],
    }
    options = dict(channel_options(policy))
    assert (
        options["grpc.enable_retries"] == 1 and json.loads(options["grpc.service_config"]) == parsed
    )
    single = dict(channel_options(RetryPolicy(max_attempts=1)))
    assert single["grpc.enable_retries"] == 0 and "retryPolicy" not in single["grpc.service_config"]
