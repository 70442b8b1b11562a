"""Settings: env prefix IOC_, TOML file via IOC_CONFIG, readable errors for bad values."""

from __future__ import annotations

from pathlib import Path

import pytest

from ioc.settings import ConfigError, load_settings


def test_defaults_and_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("IOC_CONFIG", raising=False)
    monkeypatch.setenv("IOC_PORT", "8123")
    monkeypatch.setenv("IOC_SMTP_TLS", "starttls")
    settings = load_settings()
    assert settings.port == 8123
    assert settings.smtp_tls == "starttls"
    assert settings.host == "127.0.0.1"


def test_toml_file_and_env_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "ioc.toml"
    config.write_text(
        'port = 9001\npublic_url = "https://ioc.binhphuoc.gov.vn"\n'
        "[[collectors]]\n"
        'name = "portal"\nkind = "dossiers"\nurl = "http://127.0.0.1:9100/dossiers"\n',
        encoding="utf-8",
    )
    monkeypatch.setenv("IOC_CONFIG", str(config))
    monkeypatch.delenv("IOC_PORT", raising=False)
    settings = load_settings()
    assert settings.port == 9001
    assert settings.public_url == "https://ioc.binhphuoc.gov.vn"
    assert settings.collectors[0].kind == "dossiers"
    assert settings.collectors[0].interval_seconds == 10.0
    monkeypatch.setenv("IOC_PORT", "9002")
    assert load_settings().port == 9002


def test_every_bad_value_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("IOC_CONFIG", raising=False)
    monkeypatch.setenv("IOC_PORT", "eighty")
    monkeypatch.setenv("IOC_SMTP_TLS", "ssl")
    monkeypatch.setenv("IOC_DATABASE_URL", "mysql://root@localhost/ioc")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    message = caught.value.detail
    assert "IOC_PORT" in message and "'eighty'" in message
    assert "IOC_SMTP_TLS" in message and "'ssl'" in message
    assert "IOC_DATABASE_URL" in message and "postgresql://" in message


def test_missing_or_broken_config_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("IOC_CONFIG", str(tmp_path / "nope.toml"))
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings()
    broken = tmp_path / "broken.toml"
    broken.write_text("port = = 1", encoding="utf-8")
    monkeypatch.setenv("IOC_CONFIG", str(broken))
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings()


def test_bad_collector_in_toml(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "ioc.toml"
    config.write_text(
        '[[collectors]]\nname = "x"\nkind = "tweets"\nurl = "ftp://x"\n', encoding="utf-8"
    )
    monkeypatch.setenv("IOC_CONFIG", str(config))
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert "collectors.0.kind" in caught.value.detail
    assert "collectors.0.url" in caught.value.detail
