"""Settings: defaults, list parsing, and one clear error naming each malformed variable."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import time
from pathlib import Path

import pytest

from bot.cli import main
from bot.config import PUBLIC_API_BASE, SettingsError, load_settings

TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"


# No real setting and no `.env` in the working folder may leak into a test.
pytestmark = pytest.mark.usefixtures("clean_environment")


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """The CLI configures logging; leave the root logger as it was."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_defaults() -> None:
    settings = load_settings(None)
    assert settings.digest_time == time(8, 0)
    assert settings.timezone == "UTC"
    assert settings.tz.key == "UTC"
    assert settings.dozor_db == Path("./data/dozor.sqlite3")
    assert settings.telegram_api_base == PUBLIC_API_BASE == "https://api.telegram.org"
    assert settings.sources == []
    assert settings.admin_ids == []
    assert settings.log_level == "INFO"
    assert settings.bot_token is None


def test_a_dotenv_in_the_working_folder_is_not_read_when_told_not_to(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("DIGEST_TIME=25:00\nTIMEZONE=Europe/Moscow\n")
    assert load_settings(None).timezone == "UTC"


@pytest.mark.parametrize(
    ("raw", "parsed"),
    [
        ("jsonl:/data/a.jsonl", ["jsonl:/data/a.jsonl"]),
        ("jsonl:/a.jsonl,jsonl:/b.jsonl", ["jsonl:/a.jsonl", "jsonl:/b.jsonl"]),
        (" jsonl:/a.jsonl , jsonl:/b.jsonl ,", ["jsonl:/a.jsonl", "jsonl:/b.jsonl"]),
        (",,", []),
        ("", []),
    ],
)
def test_sources_are_comma_separated(
    monkeypatch: pytest.MonkeyPatch, raw: str, parsed: list[str]
) -> None:
    monkeypatch.setenv("SOURCES", raw)
    assert load_settings(None).sources == parsed


@pytest.mark.parametrize(
    ("raw", "parsed"),
    [
        ("12", [12]),
        ("12,34", [12, 34]),
        (" 12 , 34 ,", [12, 34]),
        ("-1001234567890, 5", [-1001234567890, 5]),
        ("", []),
    ],
)
def test_admin_ids_are_comma_separated_numbers(
    monkeypatch: pytest.MonkeyPatch, raw: str, parsed: list[int]
) -> None:
    monkeypatch.setenv("ADMIN_IDS", raw)
    assert load_settings(None).admin_ids == parsed


@pytest.mark.parametrize(
    ("name", "raw", "parsed"),
    [
        ("DIGEST_TIME", "7:05", time(7, 5)),
        ("DIGEST_TIME", " 23:59 ", time(23, 59)),
        ("TIMEZONE", "Europe/Moscow", "Europe/Moscow"),
        ("LOG_LEVEL", "debug", "DEBUG"),
        ("TELEGRAM_API_BASE", "http://127.0.0.1:8081/", "http://127.0.0.1:8081"),
        ("DOZOR_DB", "/var/lib/dozor/db.sqlite3", Path("/var/lib/dozor/db.sqlite3")),
    ],
)
def test_well_formed_values_are_accepted(
    monkeypatch: pytest.MonkeyPatch, name: str, raw: str, parsed: object
) -> None:
    monkeypatch.setenv(name, raw)
    assert getattr(load_settings(None), name.lower()) == parsed


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("DIGEST_TIME", "25:00"),
        ("DIGEST_TIME", "8am"),
        ("DIGEST_TIME", "08:60"),
        ("DIGEST_TIME", "08:00:00"),
        ("TIMEZONE", "Mars/Olympus"),
        ("TIMEZONE", "../../etc/passwd"),
        ("ADMIN_IDS", "12,abc"),
        ("ADMIN_IDS", "12;34"),
        ("LOG_LEVEL", "LOUD"),
        ("BOT_TOKEN", "nonsense"),
        ("BOT_TOKEN", "123456789:short"),
        ("TELEGRAM_API_BASE", "ftp://x"),
        ("TELEGRAM_API_BASE", "api.telegram.org"),
    ],
)
def test_malformed_variable_is_named_in_the_error(
    monkeypatch: pytest.MonkeyPatch, name: str, raw: str
) -> None:
    monkeypatch.setenv(name, raw)
    with pytest.raises(SettingsError) as caught:
        load_settings(None)
    message = str(caught.value)
    assert f"invalid setting {name}: " in message
    assert "\n" not in message
    if name == "BOT_TOKEN":
        assert raw not in message  # a secret, even a wrong one, stays out of logs


def test_empty_database_path_is_named_in_the_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOZOR_DB", "")  # e.g. a `DOZOR_DB=` line left blank in .env
    with pytest.raises(SettingsError, match="DOZOR_DB"):
        load_settings(None)


def test_every_malformed_variable_is_named_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIGEST_TIME", "8am")
    monkeypatch.setenv("TIMEZONE", "Mars/Olympus")
    with pytest.raises(SettingsError) as caught:
        load_settings(None)
    assert "DIGEST_TIME" in str(caught.value)
    assert "TIMEZONE" in str(caught.value)


def test_require_token_without_bot_token_names_it() -> None:
    settings = load_settings(None)
    with pytest.raises(SettingsError, match="BOT_TOKEN"):
        settings.require_token()


def test_require_token_returns_it_without_blanks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOT_TOKEN", f" {TOKEN} ")
    settings = load_settings(None)
    assert settings.require_token() == TOKEN
    assert TOKEN not in repr(settings)


def test_dotenv_file_is_read(tmp_path: Path) -> None:
    env = tmp_path / "conf" / "dozor.env"
    env.parent.mkdir()
    env.write_text(
        f"BOT_TOKEN={TOKEN}\nDIGEST_TIME=07:30\nTIMEZONE=Europe/Moscow\n"
        "SOURCES=jsonl:/a.jsonl, jsonl:/b.jsonl,\nADMIN_IDS=1, 2\n# a comment\n",
        encoding="utf-8",
    )
    settings = load_settings(str(env))
    assert settings.require_token() == TOKEN
    assert settings.digest_time == time(7, 30)
    assert settings.tz.key == "Europe/Moscow"
    assert settings.sources == ["jsonl:/a.jsonl", "jsonl:/b.jsonl"]
    assert settings.admin_ids == [1, 2]


def test_environment_overrides_dotenv(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("TIMEZONE=Europe/Moscow\n", encoding="utf-8")
    monkeypatch.setenv("TIMEZONE", "Europe/Berlin")
    assert load_settings(str(env)).timezone == "Europe/Berlin"


def test_malformed_value_in_dotenv_is_named(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("DIGEST_TIME=8am\n", encoding="utf-8")
    with pytest.raises(SettingsError, match="DIGEST_TIME"):
        load_settings(str(env))


def _one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("dozor: ")
    assert captured.out == ""
    return lines[0]


@pytest.mark.parametrize("command", [["run"], ["digest", "--now"]])
def test_cli_reports_a_malformed_setting_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    monkeypatch.setenv("BOT_TOKEN", TOKEN)
    monkeypatch.setenv("DIGEST_TIME", "25:00")
    assert main(command) == 2
    assert "DIGEST_TIME" in _one_error_line(capsys)


@pytest.mark.parametrize("command", [["run"], ["digest", "--now"]])
def test_cli_without_a_token_names_bot_token(
    capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    assert main(command) == 2
    assert "BOT_TOKEN" in _one_error_line(capsys)


def test_cli_reads_dotenv_from_the_working_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / ".env").write_text("TIMEZONE=Mars/Olympus\n", encoding="utf-8")
    assert main(["run"]) == 2
    assert "TIMEZONE" in _one_error_line(capsys)


def test_cli_with_the_token_line_left_blank_names_bot_token(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # What a fresh copy of .env.example looks like before the token is filled in.
    (tmp_path / ".env").write_text("BOT_TOKEN=\nSOURCES=\nADMIN_IDS=\n", encoding="utf-8")
    assert main(["run"]) == 2
    assert "BOT_TOKEN" in _one_error_line(capsys)
