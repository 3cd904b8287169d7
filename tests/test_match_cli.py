"""`dozor match`: ids of matching JSON-lines posts, `--explain`, and exit 2 on a bad query."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

from bot.cli import run_match

POSTS = [
    {"id": 1, "text": "Пуск «Орешника» с полигона Капустин Яр"},
    {"id": "b", "text": "Садоводам: орешник (лещину) обрезают осенью"},
    {"id": 3, "text": "INF Treaty: five years on"},
    {"id": 4, "text": "new info on infantry"},
]


def _run(query: str, lines: list[str], explain: bool = False) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = run_match(query, lines, out, err, explain)
    return status, out.getvalue(), err.getvalue()


def _lines() -> list[str]:
    return [json.dumps(post, ensure_ascii=False) + "\n" for post in POSTS]


def test_prints_ids_of_matching_posts() -> None:
    assert _run("Oreshnik -лещина", _lines()) == (0, "1\n", "")
    assert _run("INF", _lines())[1] == "3\n"


def test_explain_adds_the_matched_words() -> None:
    status, out, _ = _run('Орешник OR "INF Treaty"', _lines(), explain=True)
    assert status == 0
    assert out.splitlines() == ["1\tОрешника", "b\tорешник", "3\tINF, Treaty"]


def test_bad_lines_are_reported_and_skipped() -> None:
    lines = ["not json\n", '{"id": 5}\n', '{"id": 6, "text": 7}\n', *_lines()]
    status, out, err = _run("Oreshnik", lines)
    assert status == 0
    assert out.splitlines() == ["1", "b"]
    assert [line.split(" skipped")[0] for line in err.splitlines()] == [
        "dozor match: line 1",
        "dozor match: line 2",
        "dozor match: line 3",
    ]


def test_malformed_query_exits_2_with_the_error_on_stderr(tmp_path: Path) -> None:
    posts = tmp_path / "posts.jsonl"
    posts.write_text("".join(_lines()), encoding="utf-8")
    bad = subprocess.run(
        [sys.executable, "-m", "bot.cli", "match", "(Oreshnik", "--file", str(posts)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 2
    assert bad.stdout == ""
    assert "( is never closed (at character 1)" in bad.stderr
    good = subprocess.run(
        [sys.executable, "-m", "bot.cli", "match", "Oreshnik -лещина"],
        input="".join(_lines()),
        capture_output=True,
        text=True,
        check=False,
    )
    assert (good.returncode, good.stdout) == (0, "1\n")
