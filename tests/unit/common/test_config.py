"""copyloop.common.config: settings from the environment, validated with clear messages."""

from __future__ import annotations

import pytest

from copyloop.common.config import ServiceSettings, SettingsError, parse_api_keys


def test_settings_validate_with_clear_messages(monkeypatch: pytest.MonkeyPatch) -> None:
    assert parse_api_keys("k1:a, k2:b") == {"k1": "a", "k2": "b"}
    monkeypatch.setenv("COPYLOOP_API_KEYS", "broken")
    monkeypatch.setenv("COPYLOOP_PORT", "99999")
    with pytest.raises(SettingsError) as err:
        ServiceSettings.from_env()
    text = str(err.value)
    assert "COPYLOOP_API_KEYS" in text and "key:tenant" in text and "COPYLOOP_PORT" in text
