"""Settings from WEATHERPIPE_* variables (and an optional .env); nothing is built at import."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from weatherpipe.errors import ConfigError
from weatherpipe.redact import MaskedUrl, mask_url

ENV_PREFIX = "WEATHERPIPE_"


class Settings(BaseSettings):
    """Every setting of weatherpipe; each CLI option reads the variable of the same name."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_file=".env", extra="ignore", validate_default=True
    )

    database_url: MaskedUrl = Field(
        "sqlite:///weather.db",
        description="SQLAlchemy URL of the database (sqlite:///FILE or mysql+pymysql://...).",
    )
    bus_url: MaskedUrl = Field(
        "memory://",
        description="Message bus URL: memory://, nats://HOST:PORT, mqtt://HOST:PORT or pubsub://PROJECT.",
    )
    topic: str = Field("weather_topic", description="Topic (subject) the sensors publish to.")
    subscription: str = Field(
        "weather_sub", description="Subscription (durable consumer) ingest pulls from."
    )
    batch_size: int = Field(
        20_000, ge=1, le=100_000, description="Most readings per insert batch (one transaction)."
    )
    batch_seconds: float = Field(
        0.5, gt=0, le=60, description="Longest time a batch waits to fill before it is written."
    )
    writers: int = Field(
        2,
        ge=1,
        le=8,
        description="Batches ingest writes at once, each in its own transaction (SQLite: 1).",
    )
    detector: str = Field(
        "default", description="Anomaly detector name (see `weatherpipe detectors`)."
    )
    false_alarms_per_day: float | None = Field(
        None,
        gt=0,
        allow_inf_nan=False,
        description="Detection sensitivity: expected false alarms per device per day on normal "
        "weather (unset: the detector's own default, see `weatherpipe detectors`); a device's "
        "own value (`weatherpipe devices sensitivity`) takes precedence.",
    )
    detect_interval: float = Field(
        0.5, gt=0, le=3600, description="Seconds between detection passes over new readings."
    )
    api_host: str = Field("127.0.0.1", description="Address the API listens on.")
    api_port: int = Field(8000, ge=1, le=65535, description="Port the API listens on.")
    api_token: SecretStr | None = Field(
        None, description="When set, every API request needs `Authorization: Bearer TOKEN`."
    )
    cors_origins: str = Field(
        "", description="Comma-separated origins allowed by CORS; empty turns CORS off."
    )
    api_cache_seconds: float = Field(
        1.0,
        ge=0,
        le=3600,
        allow_inf_nan=False,
        description="Seconds the API keeps a fleet-wide analysis (devices, counts, maxima, "
        "anomalies) and answers every caller from it; 0 asks the database on every request.",
    )
    max_clock_ahead: float = Field(
        86_400.0,
        ge=0,
        description="Seconds a reading's ts may run ahead of ingest's clock; later ones are "
        "dead letters.",
    )
    oldest_ts: datetime = Field(
        datetime(2000, 1, 1, tzinfo=UTC),
        description="Readings stamped before this instant (RFC 3339) are dead letters.",
    )
    device_keys: str | None = Field(
        None, description="Path to a file of per-device HMAC keys (`DEVICE_ID KEY` per line)."
    )
    device_topic: str = Field(
        "weather/+/telemetry",
        description="MQTT only: ingest also takes readings from per-device topics matching this "
        'pattern (its one `+` level is the device id; the lean body `{"temperature": 21.4}` '
        "is enough); empty turns it off.",
    )
    telemetry_rate: float = Field(
        10.0,
        gt=0,
        allow_inf_nan=False,
        description="Readings per second each device may POST to /api/v1/telemetry (a token "
        "bucket per device and API process; over it: 429 with Retry-After).",
    )
    telemetry_burst: int = Field(
        1000,
        ge=1,
        description="Readings a device may POST at once after a quiet spell (the bucket's size; "
        "a batch larger than this is always 429).",
    )
    telemetry_max_bytes: int = Field(
        1024 * 1024,
        ge=1024,
        le=64 * 1024 * 1024,
        description="Largest /api/v1/telemetry body in bytes (413 over it); each reading is "
        "also at most 64 KiB.",
    )
    alerts_file: str | None = Field(
        None,
        description="TOML file of alert rules and receivers (docs/alerts.md); unset: no alerts "
        "stage runs in `weatherpipe up`.",
    )
    spool_path: str = Field(
        "weatherpipe-sensors.spool", description="File where sensors keep readings the bus refused."
    )
    migrate: bool = Field(
        True,
        description="Upgrade the database schema when a stage starts; false where one setup job "
        "runs `weatherpipe db upgrade` before the stages (they then only check it is current).",
    )
    retention_days: int = Field(
        30,
        ge=0,
        description="Days raw readings are kept (by their ts); `weatherpipe prune` deletes older "
        "ones. Counts and maxima stay: they come from daily rollups, kept forever. 0: forever.",
    )
    rollup_retention_days: int = Field(
        365,
        ge=0,
        description="Days per-minute rollups are kept (charts by minute and hour). 0: forever.",
    )
    dead_letter_retention_days: int = Field(
        14, ge=0, description="Days dead letters are kept (by received time). 0: forever."
    )
    prune_every: float = Field(
        3600.0,
        ge=0,
        description="Seconds between prune passes in `weatherpipe up` and `weatherpipe prune "
        "--every`; 0: `up` does not prune.",
    )
    prune_batch: int = Field(
        2000, ge=1, le=100_000, description="Most rows one prune DELETE removes (one transaction)."
    )
    prune_pause: float = Field(
        0.1,
        ge=0,
        le=60,
        description="Least seconds prune waits after each batch it deleted (it also waits at "
        "least 3 times as long as the batch took).",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="Log level."
    )
    log_json: bool = Field(False, description="Write logs as JSON lines.")

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        if not value.startswith(("sqlite:", "mysql", "mariadb", "postgresql")):
            raise ValueError(
                "must start with sqlite:, mysql+pymysql:, mariadb+pymysql: or postgresql:"
            )
        return value

    @field_validator("device_topic")
    @classmethod
    def _one_device_level(cls, value: str) -> str:
        levels = value.split("/")
        if value and (levels.count("+") != 1 or "#" in value or "" in levels):
            raise ValueError("needs exactly one `+` level and no `#`, e.g. weather/+/telemetry")
        return value

    @field_validator("oldest_ts")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("needs a UTC offset, e.g. 2000-01-01T00:00:00Z")
        return value.astimezone(UTC)

    @field_validator("bus_url")
    @classmethod
    def _known_bus(cls, value: str) -> str:
        if (
            value.split("://", 1)[0] not in {"memory", "nats", "mqtt", "pubsub"}
            or "://" not in value
        ):
            raise ValueError(
                "must be memory://, nats://HOST:PORT, mqtt://HOST:PORT or pubsub://PROJECT"
            )
        return value


def load_settings(**overrides: object) -> Settings:
    """Build settings from the environment; a bad value raises ConfigError naming the variable."""
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})  # type: ignore[arg-type]
    except ValidationError as exc:
        err = exc.errors()[0]
        name = ENV_PREFIX + str(err["loc"][0]).upper() if err["loc"] else ENV_PREFIX
        given = err.get("input")
        shown = repr(mask_url(given)) if isinstance(given, str) else repr(given)
        if name == ENV_PREFIX + "API_TOKEN":
            shown = "a value"  # the token itself is never shown
        raise ConfigError(f"{name}: {err['msg']} (got {shown})") from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once on first use."""
    return load_settings()
