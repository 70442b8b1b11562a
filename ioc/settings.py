"""All configuration of `ioc`: one pydantic-settings class, from `IOC_*` env vars and a TOML file.

Precedence (highest first): keyword arguments, environment variables `IOC_*`, the TOML file
named by `IOC_CONFIG`, defaults. Nested tables of the TOML file (e.g. `[[collectors]]`) map
to the fields of the same name.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from ioc.errors import Invalid, IocError
from ioc.localtime import LOCAL_TZ_NAME
from ioc.webhooks import check_secret


class ConfigError(IocError):
    """The configuration is invalid; the message lists every bad value."""

    status = 500
    title = "Invalid configuration"
    type_slug = "internal"  # an operator's fault, reported at start; a client cannot fix it


class CollectorSource(BaseModel):
    """A source that `ioc` polls (docs/api.md §1.5)."""

    name: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    kind: Literal["dossiers", "procedures", "reports", "documents", "agency_reports"]
    url: str = Field(pattern=r"^https?://")
    interval_seconds: float = Field(default=10.0, gt=0)
    page_size: int = Field(default=500, ge=1, le=10_000)
    timeout_seconds: float = Field(default=10.0, gt=0)
    auth_header: str | None = None
    enabled: bool = True
    # The sending system's organ for records that name no unit (docs/api.md §1.1 `madonvi`;
    # the organ a Hue-S export is requested for).
    madonvi: str | None = Field(default=None, max_length=200)


class TomlSource(PydanticBaseSettingsSource):
    """Reads the TOML file named by `IOC_CONFIG` (or `config_file=`)."""

    def __init__(self, settings_cls: type[BaseSettings], path: Path | None) -> None:
        super().__init__(settings_cls)
        self._data: dict[str, Any] = {}
        if path is not None:
            try:
                self._data = tomllib.loads(path.read_text(encoding="utf-8"))
            except FileNotFoundError as exc:
                raise ConfigError(f"IOC_CONFIG: file {path} does not exist") from exc
            except tomllib.TOMLDecodeError as exc:
                raise ConfigError(f"IOC_CONFIG: {path} is not valid TOML: {exc}") from exc

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return {k: v for k, v in self._data.items() if k in self.settings_cls.model_fields}


class Settings(BaseSettings):
    """Every setting of `ioc`. Env var = `IOC_` + field name in upper case."""

    model_config = SettingsConfigDict(env_prefix="IOC_", extra="ignore", validate_default=True)

    # --- database
    database_url: str | None = Field(
        default=None,
        description="postgresql:// URL (TCP, or a socket directory as ?host=/dir). "
        "Unset: an embedded PostgreSQL is started under data_dir.",
    )
    data_dir: Path = Field(default=Path("var"), description="Where the embedded database lives.")
    db_pool_size: int = Field(default=10, ge=1, le=200)
    migrate_on_start: bool = Field(default=True, description="Apply migrations at `serve` start.")
    gc_freeze_on_start: bool = Field(
        default=True,
        description=(
            "Once started, move every object built so far (modules, catalogue, caches) out of "
            "the cyclic garbage collector's view (`gc.freeze()`), so its full passes stay short."
        ),
    )

    # --- HTTP
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    public_url: str = Field(
        default="",
        pattern=r"^(https?://.*)?$",
        description="Base URL people use to reach ioc (links in emails); default from host/port.",
    )
    metrics_token: str | None = Field(
        default=None, description="If set, /metrics requires `Authorization: Bearer <this>`."
    )
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_json: bool = Field(default=False, description="Log as JSON lines (for log shippers).")
    cors_origins: list[str] = Field(default_factory=list)
    ws_allowed_origins: list[str] = Field(
        default_factory=list,
        description="Origins allowed to open /ws from a browser; empty = same host only.",
    )

    # --- ingest
    ingest_max_records: int = Field(default=10_000, ge=1)
    ingest_max_body_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)
    xml_max_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    xml_max_depth: int = Field(default=64, ge=8)
    collectors: list[CollectorSource] = Field(default_factory=list)

    # --- KPIs
    kpi_warn_margin: float = Field(default=0.05, ge=0, le=1)
    kpi_targets: dict[str, float] = Field(
        default_factory=dict, description="Default targets by KPI id, overriding the catalogue."
    )

    # --- live
    events_retention_hours: float = Field(default=72.0, gt=0)
    events_purge_seconds: float = Field(
        default=300.0, gt=0, description="How often the (leased) retention purge runs."
    )
    ws_queue_size: int = Field(
        default=1024, ge=1, description="Pending messages per screen before it is resynchronised."
    )
    ws_overflow: Literal["snapshot", "close"] = Field(
        default="snapshot",
        description="On queue overflow: send a fresh snapshot (overflowing again within "
        "ws_overflow_window_seconds without having caught up closes with 1013), or close "
        "with 1013 at once.",
    )
    ws_overflow_window_seconds: float = Field(default=30.0, ge=0)
    ws_coalesce_kpis: bool = Field(
        default=True,
        description="A KPI update still queued for a screen is replaced by a newer one for "
        "the same (unit, window, kpi).",
    )
    ws_ping_seconds: float = Field(
        default=10.0,
        gt=0,
        le=15,
        description="Send {type: ping} after this long without a message.",
    )
    ws_idle_timeout_seconds: float = Field(
        default=90.0,
        gt=0,
        description="Close a screen that sent nothing (not even a ping) this long.",
    )
    ws_send_timeout_seconds: float = Field(
        default=10.0, gt=0, description="Cut off a screen whose socket accepts nothing this long."
    )
    ws_auth_recheck_seconds: float = Field(
        default=15.0, gt=0, description="How often open sockets' tokens are re-checked."
    )
    ws_max_message_bytes: int = Field(
        default=4096, ge=256, description="Largest message a client may send."
    )
    ws_max_replay: int = Field(
        default=10_000, ge=1, description="Resume replays at most this many events, else snapshot."
    )
    ws_compression: bool = Field(
        default=False,
        description="Offer permessage-deflate to clients (costs CPU and memory per screen).",
    )

    # --- alerts (SMTP)
    smtp_host: str | None = None
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_from: str = "ioc@localhost"
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_tls: Literal["none", "starttls", "tls"] = "none"
    smtp_timeout_seconds: float = Field(default=15.0, gt=0)
    # --- weekly digest (docs/digest.md)
    digest_enabled: bool = Field(default=True, description="Send the weekly digest.")
    digest_cron: str = Field(
        default="30 7 * * mon",
        description="When the weekly digest is sent, as a crontab line in Asia/Ho_Chi_Minh "
        "(minute hour day month weekday); it covers the Monday–Sunday week before.",
    )

    # --- open data (docs/api.md, open data)
    open_data_public: bool = Field(
        default=False,
        description="Serve /api/v1/open-data/kpis.csv|json without a token (for the "
        "province's open-data portal); otherwise a reading token is needed.",
    )
    open_data_unit: str | None = Field(
        default=None, description="The unit exported when a request names none (e.g. 70)."
    )
    open_data_licence: str = Field(
        default="Giấy phép CC BY 4.0 (https://creativecommons.org/licenses/by/4.0/) — "
        "nguồn: Trung tâm Điều hành thông minh (IOC) của tỉnh; số liệu tổng hợp, không chứa "
        "dữ liệu cá nhân",
        description="The licence line of the open-data exports.",
    )

    # --- scorecards (Decision 766; see docs/scorecards.md)
    scorecard_live_seconds: float = Field(
        default=30.0,
        gt=0,
        description="How often the current month's scorecards of units whose 766 indicators "
        "changed are recomputed and sent to screens and feeds as `scorecard` events.",
    )
    scorecard_close_cron: str = Field(
        default="15 0 1 * *",
        description="When the month just over is closed (its scorecards stored for good), as a "
        "crontab line in Asia/Ho_Chi_Minh: minute hour day month weekday.",
    )

    # --- alerts (evaluation and delivery; see docs/alerts.md)
    alerts_enabled: bool = Field(default=True, description="Run the alert evaluator and sender.")
    alerts_eval_seconds: float = Field(
        default=5.0, gt=0, description="Evaluator round interval (KPI events also wake it)."
    )
    alerts_tick_seconds: float = Field(
        default=60.0, gt=0, description="How often time-based KPIs (overdue counts) are recomputed."
    )
    alerts_send_seconds: float = Field(default=1.0, gt=0, description="Outbox poll interval.")
    alerts_group_wait_seconds: float = Field(
        default=10.0, ge=0, description="Wait this long to group notifications per recipient."
    )
    alerts_retry_base_seconds: float = Field(default=10.0, gt=0)
    alerts_retry_max_seconds: float = Field(default=1800.0, gt=0)
    alerts_max_attempts: int = Field(
        default=30, ge=1, description="Give a notification up after this many failed attempts."
    )
    alerts_webhook_timeout_seconds: float = Field(default=10.0, gt=0)

    # --- feeds / webhooks
    webhooks_allow_private: bool = False
    feeds_enabled: bool = Field(default=True, description="Run feed delivery and record events.")
    feeds_loop_seconds: float = Field(default=1.0, gt=0, description="Feed services' tick.")
    feeds_timeout_seconds: float = Field(default=10.0, gt=0, description="Per delivery attempt.")
    feeds_retry_base_seconds: float = Field(default=5.0, gt=0, description="First retry delay.")
    feeds_retry_max_seconds: float = Field(default=3600.0, gt=0, description="Longest delay.")
    feeds_retry_for_seconds: float = Field(
        default=86400.0, gt=0, description="Retry a failing delivery this long, then `failing`."
    )
    feeds_secret_grace_seconds: float = Field(
        default=86400.0, ge=0, description="After rotation, the old secret also signs this long."
    )
    feeds_delivery_log_days: float = Field(default=7.0, gt=0, description="Delivery log kept.")
    feeds_db_pool_size: int = Field(default=10, ge=1, le=200)
    federation_secret: str | None = Field(
        default=None,
        description="whsec_ secret of the upstream ioc's subscription; enables the inbox.",
    )
    federation_kpis: Literal["upstream", "local"] = Field(
        default="upstream",
        description="upstream: the upstream's KPI values win on this instance's screens (/ws, "
        "/screen) and GET /api/v1/kpis where it has sent one; local: only this instance's "
        "KPI engine.",
    )
    federation_unit: str | None = Field(
        default=None,
        pattern=r"^[0-9]{2,5}$",
        description="The unit this instance mirrors: upstream kpi events outside its subtree "
        "are ignored (e.g. 689 for a district).",
    )

    # --- hardening: input limits, rate limits, personal data (docs/security.md)
    json_max_depth: int = Field(default=32, ge=4, description="Deepest JSON nesting accepted.")
    json_max_array: int = Field(
        default=10_000, ge=1, description="Longest JSON array (ingest: max of this and records)."
    )
    json_max_string_chars: int = Field(default=100_000, ge=256)
    json_max_object_keys: int = Field(default=1_000, ge=16)
    rate_limit_enabled: bool = True
    rate_limit_api_per_second: float = Field(default=100.0, gt=0)
    rate_limit_api_burst: int = Field(default=1_000, ge=1)
    rate_limit_ingest_per_second: float = Field(default=100.0, gt=0)
    rate_limit_ingest_burst: int = Field(default=1_000, ge=1)
    # Websocket handshakes have their own, larger budget: a wall of screens sharing one token
    # reconnects all at once after a restart.
    rate_limit_ws_handshakes_per_second: float = Field(default=200.0, gt=0)
    rate_limit_ws_handshakes_burst: int = Field(default=20_000, ge=1)
    ws_messages_per_second: float = Field(
        default=5.0, gt=0, description="Messages a screen may send per second (then 1008)."
    )
    ws_messages_burst: int = Field(default=20, ge=1)
    personal_data_retention_days: int = Field(
        default=180, ge=1, description="Erase citizens' data this long after a record closed."
    )
    dead_letter_retention_days: int = Field(default=90, ge=1)
    access_log_retention_days: int = Field(default=730, ge=30)

    # --- web console (docs/console.md)
    console_secret_key: str | None = Field(
        default=None,
        min_length=32,
        description="Key signing the console's cookies; unset → a random key per process "
        "(sessions end at restart; set the same key on every replica).",
    )
    console_session_hours: float = Field(default=8.0, gt=0, le=24 * 7)
    console_cookie_secure: bool = Field(
        default=True, description="Mark the console's cookies Secure (https, or localhost)."
    )
    console_oidc_issuer: str | None = Field(
        default=None, description="OpenID Connect issuer URL; unset → no single sign-on."
    )
    console_oidc_client_id: str = "ioc-console"
    console_oidc_client_secret: str | None = None
    console_oidc_scopes: str = "openid profile email"
    console_oidc_role_claim: str = Field(
        default="groups", description="Claim holding the identity's groups or roles."
    )
    console_oidc_roles: dict[str, str] = Field(
        default_factory=dict,
        description="Claim value → ioc role, first match in this order wins (JSON object).",
    )
    console_oidc_unit_claim: str = Field(
        default="ioc_unit", description="Claim holding the identity's unit (a GSO code)."
    )
    console_oidc_default_unit: str | None = Field(
        default=None, description="Unit for identities whose token has no unit claim."
    )

    # --- demo
    demo: bool = Field(default=False, description="Load the demo province and simulate sources.")
    simulate_rate: float = Field(default=5.0, ge=0, description="Demo records per second.")
    seed: int = 7

    @model_validator(mode="after")
    def _default_public_url(self) -> Settings:
        if not self.public_url:
            wildcard = ("0.0.0.0", "127.0.0.1", "::")  # noqa: S104 - compared, not bound
            host = "localhost" if self.host in wildcard else self.host
            self.public_url = f"http://{host}:{self.port}"
        self.public_url = self.public_url.rstrip("/")
        return self

    @field_validator("database_url")
    @classmethod
    def _postgres_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not value.startswith(("postgresql://", "postgres://", "postgresql+asyncpg://")):
            raise ValueError("must be a postgresql:// URL, e.g. postgresql://user@127.0.0.1/ioc")
        return value

    @field_validator("scorecard_close_cron", "digest_cron")
    @classmethod
    def _crontab(cls, value: str) -> str:
        from apscheduler.triggers.cron import CronTrigger

        try:
            CronTrigger.from_crontab(value, timezone=LOCAL_TZ_NAME)
        except ValueError as exc:
            raise ValueError(f"not a crontab line (minute hour day month weekday): {exc}") from None
        return value

    @field_validator("federation_secret")
    @classmethod
    def _verifiable_secret(cls, value: str | None) -> str | None:
        if not value:
            return None
        try:
            return check_secret(value)
        except Invalid as exc:
            raise ValueError(str(exc)) from None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        config = os.environ.get("IOC_CONFIG")
        path = Path(config) if config else None
        return (init_settings, env_settings, TomlSource(settings_cls, path))


def load_settings(**overrides: Any) -> Settings:
    """Build the settings, or raise `ConfigError` naming every bad value and what is expected."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"])
            env = "IOC_" + str(err["loc"][0]).upper() if err["loc"] else "IOC_?"
            lines.append(f"  {env} ({loc}): {err['msg']} (got {err.get('input')!r})")
        raise ConfigError("invalid settings:\n" + "\n".join(lines)) from None
