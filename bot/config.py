"""Settings from the environment and an optional `.env` (built in `main()`, never at import)."""

from __future__ import annotations

import re
from datetime import time
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot.redact import url_password

PUBLIC_API_BASE = "https://api.telegram.org"
MAX_RETENTION_DAYS = 36_500  # a century: beyond it the cutoff date would fall before year 1
_TOKEN_RE = re.compile(r"^\d{1,20}:[A-Za-z0-9_-]{20,}$")


class SettingsError(Exception):
    """A setting is missing or malformed; the message names the variable. `problems`: one
    line per bad variable (the message joins them)."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems if problems is not None else [message]


class Settings(BaseSettings):
    """Every knob of Dozor; each is documented in `.env.example`."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    bot_token: SecretStr | None = None
    telegram_api_base: str = PUBLIC_API_BASE
    dozor_db: Path = Path("./data/dozor.sqlite3")
    # postgresql://USER:PASSWORD@HOST:PORT/DATABASE: PostgreSQL instead of DOZOR_DB.
    database_url: SecretStr | None = None
    sources: Annotated[list[str], NoDecode] = []
    admin_ids: Annotated[list[int], NoDecode] = []
    # A private deployment answers only these users (and ADMIN_IDS); empty: everyone.
    allowed_users: Annotated[list[int], NoDecode] = []
    presets_file: Path | None = None  # None: the presets shipped with Dozor
    digest_time: time = time(8, 0)
    timezone: str = "UTC"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    log_format: Literal["plain", "json"] = "plain"
    # Port of the /healthz and /metrics endpoint (None: no endpoint).
    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    metrics_host: str = "0.0.0.0"  # every interface: a container publishes its port by choice
    tg_api_id: int | None = None
    tg_api_hash: SecretStr | None = None
    tg_session: Path = Path("./data/telegram.session")
    tg_catch_up_minutes: float = Field(default=2.0, gt=0)
    tgweb_base: str = "https://t.me"
    tgweb_poll_minutes: float = Field(default=5.0, gt=0)
    x_bearer_token: SecretStr | None = None
    x_api_base: str = "https://api.x.com"
    x_poll_minutes: float = Field(default=5.0, gt=0)
    x_include_replies: bool = False
    x_include_reposts: bool = False
    rss_poll_minutes: float = Field(default=10.0, gt=0)
    poll_per_host: int = Field(default=2, ge=1, le=20)
    send_rate: float = Field(default=30.0, gt=0, le=1000)
    # Posts older than this many days are pruned (0: kept forever); see `Storage.prune`.
    retention_days: int = Field(default=0, ge=0, le=MAX_RETENTION_DAYS)

    @field_validator(
        "tg_api_id", "tg_api_hash", "x_bearer_token", "presets_file", "metrics_port", mode="before"
    )
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @property
    def telegram_credentials(self) -> tuple[int, str] | None:
        """API id and hash when both are set (then `telegram:` sources read as a user)."""
        if self.tg_api_id is None or self.tg_api_hash is None:
            return None
        return self.tg_api_id, self.tg_api_hash.get_secret_value()

    @field_validator("bot_token", mode="after")
    @classmethod
    def _token_shape(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not _TOKEN_RE.match(value.get_secret_value().strip()):
            raise ValueError("expected a token like 123456789:AA... as given by @BotFather")
        return value

    @field_validator("telegram_api_base", "tgweb_base", "x_api_base", mode="after")
    @classmethod
    def _base_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError("expected an http(s) URL such as https://api.telegram.org")
        return value.rstrip("/")

    @field_validator("dozor_db", mode="before")
    @classmethod
    def _db_path(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            raise ValueError("expected a file path such as ./data/dozor.sqlite3")
        return value

    @field_validator("database_url", mode="before")
    @classmethod
    def _database_url(cls, value: object) -> object:
        if isinstance(value, str):
            if not value.strip():
                return None  # DATABASE_URL= in .env: SQLite
            if not value.strip().startswith(("postgresql://", "postgres://")):
                raise ValueError("expected a URL such as postgresql://dozor@localhost/dozor")
            return value.strip()
        return value

    @field_validator("sources", mode="before")
    @classmethod
    def _split_sources(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("admin_ids", "allowed_users", mode="before")
    @classmethod
    def _split_ids(cls, value: object) -> object:
        if isinstance(value, str):
            parts = [part.strip() for part in value.split(",") if part.strip()]
            for part in parts:
                if not re.fullmatch(r"-?\d+", part):
                    raise ValueError(f"expected comma-separated numeric user ids, got {part!r}")
            return [int(part) for part in parts]
        return value

    @field_validator("digest_time", mode="before")
    @classmethod
    def _hh_mm(cls, value: object) -> object:
        if isinstance(value, str):
            match = re.fullmatch(r"(\d{1,2}):(\d{2})", value.strip())
            if not match or int(match[1]) > 23 or int(match[2]) > 59:
                raise ValueError(f"expected HH:MM (24-hour), got {value!r}")
            return time(int(match[1]), int(match[2]))
        return value

    @field_validator("retention_days", mode="before")
    @classmethod
    def _days(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            if not text:
                return 0
            if not text.isascii() or not text.isdigit() or int(text) > MAX_RETENTION_DAYS:
                raise ValueError(
                    f"expected a number of days from 1 to {MAX_RETENTION_DAYS}, such as 30"
                    f" (0 or empty: keep posts forever), got {value!r}"
                )
            return int(text)
        return value

    @field_validator("timezone", mode="after")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r}; use a name like Europe/Moscow"
            ) from None
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("log_format", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def secrets(self) -> list[str]:
        """Every configured secret, for redaction from logs and stored errors."""
        values = [self.bot_token, self.tg_api_hash, self.x_bearer_token, self.database_url]
        found = [value.get_secret_value() for value in values if value is not None]
        password = (
            url_password(self.database_url.get_secret_value()) if self.database_url else None
        )
        return [*found, password] if password else found

    def database_value(self) -> str | None:
        """DATABASE_URL in clear (for the driver only), or None: SQLite."""
        return self.database_url.get_secret_value() if self.database_url else None

    def require_token(self) -> str:
        """The bot token, or a SettingsError naming BOT_TOKEN."""
        if self.bot_token is None:
            raise SettingsError("BOT_TOKEN is not set: put the token from @BotFather in .env")
        return self.bot_token.get_secret_value().strip()


def load_settings(env_file: str | None = ".env") -> Settings:
    """Read settings, turning pydantic's report into one line per bad variable."""
    try:
        return Settings(_env_file=env_file)  # type: ignore[call-arg]
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            name = str(error["loc"][0]).upper() if error["loc"] else "settings"
            message = str(error["msg"]).removeprefix("Value error, ")
            lines.append(f"invalid setting {name}: {message}")
        raise SettingsError("; ".join(lines), lines) from None
