"""/presets: the shipped bundles parse, one tap subscribes a whole bundle and one removes it
(the database and the matcher follow), the 100-query limit, stale and forged presses, groups,
and a broken presets file."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from aiogram import Bot

from bot.config import Settings
from bot.i18n import Catalog
from bot.ingest import Matcher
from bot.matching import parse_query
from bot.storage import Storage
from handlers.presets import (
    PresetAction,
    PresetButton,
    default_presets_file,
    load_presets,
    parse_presets,
)
from handlers.subscriptions import MAX_SUBSCRIPTIONS
from tests.botapi import FakeBotAPI, SentMessage, buttons
from tests.test_groups import ADMIN, BOT, GROUP, MEMBER, group_with_admin, in_order

TEXTS = Catalog(strict=True)
USER = 501
SHIPPED = load_presets(None)


def add(preset: str) -> str:
    return PresetButton(action=PresetAction.ADD, preset=preset).pack()


def remove(preset: str) -> str:
    return PresetButton(action=PresetAction.REMOVE, preset=preset).pack()


async def show_presets(api: FakeBotAPI, language: str = "en") -> SentMessage:
    await api.say(USER, "/presets", language_code=language)
    return api.sent_to(USER)[-1]


def button_data(message: SentMessage | None) -> list[str]:
    return [data for row in buttons(message) for _, data in row]


# --- the shipped bundles --------------------------------------------------------------


def test_the_shipped_bundles_load_and_every_query_parses() -> None:
    assert SHIPPED.problem is None
    ids = [preset.id for preset in SHIPPED.presets]
    assert {"inf", "strategic", "air-defence"} <= set(ids)
    for preset in SHIPPED.presets:
        assert preset.queries
        for query in preset.queries:
            assert parse_query(query).text == query
        for action in PresetAction:
            assert len(PresetButton(action=action, preset=preset.id).pack().encode()) <= 64
        for language in ("en", "ru"):
            assert preset.title(language).strip()
            assert preset.description(language).strip()


@pytest.mark.parametrize(
    ("preset", "posts"),
    [
        (
            "inf",
            [
                "Пуск «Орешника» по Днепру",
                "Russia says the Oreshnik is in Belarus",
                "Договор РСМД прекратил действие",
                "Iskander-M brigade moved west",
                "Ракета 9М729 (SSC-8) развёрнута",
                "Россия отказалась от моратория на размещение ракет",
                "US to deploy intermediate-range missiles in Germany",
            ],
        ),
        (
            "strategic",
            [
                "New START expires in February",
                "Испытание «Сармата» перенесли",
                "ПГРК «Ярс» вышли на маршруты",
                "Burevestnik test reported",
                "«Посейдон» на борту «Хабаровска»",
                "Вопрос о возобновлении ядерных испытаний",
                "The US could resume nuclear testing",
            ],
        ),
        (
            "air-defence",
            [
                "Силы ПВО сбили 20 дронов",
                "Patriot battery hit near Kyiv",
                "Турция получила С-400",
                "США строят систему ПРО",
            ],
        ),
    ],
)
async def test_each_bundle_finds_its_topic(
    storage: Storage, matcher: Matcher, preset: str, posts: list[str]
) -> None:
    bundle = SHIPPED.get(preset)
    assert bundle is not None
    await storage.upsert_subscriber(USER, "analyst")
    for query in bundle.queries:
        subscription = await storage.add_subscription(USER, query, preset=preset)
        assert subscription is not None
        await matcher.add(subscription)
    for post in posts:
        assert await matcher.find(post), post
    assert await matcher.find("Обрезка орешника и лещины осенью") == []


# --- one tap --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("language", "added", "removed"),
    [
        ("en", "INF-range missiles: 6 queries added", "6 queries removed"),
        ("ru", "Ракеты средней и меньшей дальности: добавлено 6 запросов", "Удалено 6 запросов"),
    ],
)
async def test_a_bundle_is_subscribed_in_one_tap_and_removed_in_one(
    api: FakeBotAPI,
    bot: Bot,
    storage: Storage,
    matcher: Matcher,
    language: str,
    added: str,
    removed: str,
) -> None:
    t = TEXTS.texts(language)
    bundle = SHIPPED.get("inf")
    assert bundle is not None
    async with in_order(storage, matcher, bot):
        shown = await show_presets(api, language)
        assert bundle.title(language) in shown.text
        assert add("inf") in button_data(shown)

        answer = await api.press(USER, shown.message_id, add("inf"), language_code=language)
        assert answer.text is not None
        assert added in answer.text
        saved = await storage.subscriptions_of(USER)
        assert [s.query for s in saved] == list(bundle.queries)
        assert {s.preset for s in saved} == {"inf"}
        assert await matcher.find("Пуск «Орешника» с полигона")
        # The same message, updated in place: the bundle is now marked and removable.
        await api.wait_for_edits(1, chat_id=USER, message_id=shown.message_id)
        now = api.current(USER, shown.message_id)
        assert remove("inf") in button_data(now)
        assert add("inf") not in button_data(now)
        assert now is not None
        assert "✅" in now.text
        assert len(api.sent_to(USER)) == 1  # no new message per tap

        answer = await api.press(USER, shown.message_id, remove("inf"), language_code=language)
        assert answer.text is not None
        assert removed in answer.text
        assert await storage.subscriptions_of(USER) == []
        assert await matcher.find("Пуск «Орешника» с полигона") == []
        await api.wait_for_edits(2, chat_id=USER, message_id=shown.message_id)
        assert add("inf") in button_data(api.current(USER, shown.message_id))
        assert t("presets-button-remove", title=bundle.title(language)) not in str(
            buttons(api.current(USER, shown.message_id))
        )


async def test_removing_a_bundle_keeps_the_chats_own_queries(
    api: FakeBotAPI, bot: Bot, storage: Storage, matcher: Matcher
) -> None:
    async with in_order(storage, matcher, bot):
        await api.say(USER, "/subscribe Искандер")
        shown = await show_presets(api)
        answer = await api.press(USER, shown.message_id, add("inf"))
        assert answer.text is not None
        assert "5 queries added" in answer.text  # Искандер was there already
        await api.wait_for_edits(1, chat_id=USER, message_id=shown.message_id)
        answer = await api.press(USER, shown.message_id, remove("inf"))
        assert answer.text is not None
        assert "5 queries removed" in answer.text
        assert [s.query for s in await storage.subscriptions_of(USER)] == ["Искандер"]
        assert await matcher.find("Искандер-М на позициях")


async def test_a_bundle_that_would_pass_the_limit_is_refused_whole(
    api: FakeBotAPI, bot: Bot, storage: Storage, matcher: Matcher
) -> None:
    await storage.upsert_subscriber(USER, "heavy user")
    for n in range(MAX_SUBSCRIPTIONS - 2):
        await storage.add_subscription(USER, f"term{n}")
    async with in_order(storage, matcher, bot):
        shown = await show_presets(api)
        answer = await api.press(USER, shown.message_id, add("inf"))
        assert answer.show_alert
        assert answer.text is not None
        assert "adds 6 queries, but only 2 of 100 places are free" in answer.text
        assert len(await storage.subscriptions_of(USER)) == MAX_SUBSCRIPTIONS - 2
        assert not any(s.preset for s in await storage.subscriptions_of(USER))


@pytest.mark.parametrize(
    ("data", "key"),
    [
        (add("no-such-bundle"), "presets-toast-outdated"),  # an old bundle, since removed
        ("pr:a", "presets-toast-outdated"),  # forged: too few parts
        ("pr:z:inf", "presets-toast-outdated"),  # forged: no such action
        (remove("strategic"), "presets-toast-nothing"),  # an old message: nothing to remove
    ],
)
async def test_stale_and_forged_presses_get_a_toast(
    api: FakeBotAPI, bot: Bot, storage: Storage, matcher: Matcher, data: str, key: str
) -> None:
    async with in_order(storage, matcher, bot):
        shown = await show_presets(api)
        answer = await api.press(USER, shown.message_id, data, check_button=False)
        assert answer.text == TEXTS.texts("en")(key)
        await api.say(USER, "/help")  # handled after the press: the press is done
        assert await storage.subscriptions_of(USER) == []
        assert api.edits == []  # nothing changed, nothing to update
        assert api.rejected == []


async def test_in_a_group_only_administrators_press_the_bundles(
    api: FakeBotAPI, bot: Bot, storage: Storage, matcher: Matcher
) -> None:
    group_with_admin(api)
    async with in_order(storage, matcher, bot):
        # Looking is open to every member.
        await api.say(GROUP, f"/presets{BOT}", user_id=MEMBER, chat_type="supergroup")
        shown = api.sent_to(GROUP)[-1]
        assert add("strategic") in button_data(shown)

        answer = await api.press(GROUP, shown.message_id, add("strategic"), user_id=MEMBER)
        assert answer.text == TEXTS.texts("en")("group-admins-only-toast")
        assert await storage.subscriptions_of(GROUP) == []

        answer = await api.press(GROUP, shown.message_id, add("strategic"), user_id=ADMIN)
        assert answer.text is not None
        assert "queries added" in answer.text
        assert {s.preset for s in await storage.subscriptions_of(GROUP)} == {"strategic"}
        assert await matcher.find("New START expires")


# --- the presets file -----------------------------------------------------------------

GOOD = """
[[preset]]
id = "naval"
title_ru = "Флот"
title_en = "Navy"
description_ru = "Корабли и подлодки."
description_en = "Ships and submarines."
queries = ["Калибр", "Циркон"]
"""
BAD_QUERY = """
[[preset]]
id = "broken"
title_ru = "Сломанная"
title_en = "Broken"
description_ru = "Запрос с ошибкой."
description_en = "A query with a mistake."
queries = ["Oreshnik OR"]
"""


def test_a_bundle_with_a_problem_is_left_out_and_named() -> None:
    book = parse_presets(GOOD + BAD_QUERY)
    assert [preset.id for preset in book.presets] == ["naval"]
    assert book.problem is not None
    assert "'broken'" in book.problem
    assert "Oreshnik OR" in book.problem


@pytest.mark.parametrize("text", ["[[preset]\nid = 'x'", "title = 'no bundles'"])
def test_a_file_that_is_no_presets_file_is_explained(text: str) -> None:
    with pytest.raises(ValueError, match=r"TOML|no \[\[preset\]\] tables"):
        parse_presets(text)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (GOOD.replace('id = "naval"', 'id = "Naval Forces!"'), "id must be"),
        (GOOD.replace('queries = ["Калибр", "Циркон"]', "queries = []"), "queries must be"),
        (GOOD.replace('title_en = "Navy"\n', ""), "title_en is missing"),
        (GOOD + GOOD, "used twice"),
    ],
)
def test_a_bundle_with_a_problem_is_explained(text: str, problem: str) -> None:
    book = parse_presets(text)
    assert book.problem is not None
    assert problem in book.problem


async def test_a_broken_presets_file_is_reported_at_start_in_one_line(
    api: FakeBotAPI,
    bot: Bot,
    storage: Storage,
    matcher: Matcher,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    broken = tmp_path / "presets.toml"
    broken.write_text('[[preset]]\nid = "x"\ntitle_en = "unclosed\n', encoding="utf-8")
    settings = Settings(_env_file=None, presets_file=broken)  # type: ignore[call-arg]
    with caplog.at_level(logging.ERROR, logger="handlers.presets"):
        async with in_order(storage, matcher, bot, settings):
            reply = await api.say(USER, "/presets", language_code="ru")
    assert reply == TEXTS.texts("ru")("presets-broken")
    lines = [r.getMessage() for r in caplog.records if r.name == "handlers.presets"]
    assert len(lines) == 1
    assert str(broken) in lines[0]
    assert "\n" not in lines[0]


async def test_an_extended_file_offers_its_bundles(
    api: FakeBotAPI, bot: Bot, storage: Storage, matcher: Matcher, tmp_path: Path
) -> None:
    extended = tmp_path / "presets.toml"
    extended.write_text(
        default_presets_file().read_text(encoding="utf-8") + GOOD, encoding="utf-8"
    )
    settings = Settings(_env_file=None, presets_file=extended)  # type: ignore[call-arg]
    async with in_order(storage, matcher, bot, settings):
        shown = await show_presets(api)
        assert "Navy" in shown.text
        answer = await api.press(USER, shown.message_id, add("naval"))
        assert answer.text is not None
        assert "Navy: 2 queries added" in answer.text
