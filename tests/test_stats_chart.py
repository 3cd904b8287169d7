"""/stats for everyone: the chat's 14-day chart of its queries (the digest's, on demand), as a
PNG photo with a caption in the chat's language; a short note when nothing matched."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

from PIL import Image

from bot.domain import Post, Span
from bot.i18n import Catalog
from bot.storage import Storage
from bot.storage.sqlite import MatchRecord
from tests.botapi import FakeBotAPI
from tests.conftest import USER, Chat

TEXTS = Catalog(strict=True)


async def _matched(storage: Storage, number: int, query: str, days_ago: float) -> None:
    (subscription,) = [s for s in await storage.subscriptions_of(USER) if s.query == query]
    date = datetime.now(UTC) - timedelta(days=days_ago)
    post = Post("tgweb", "milinfolive", str(number), date, f"{query} news {number}")
    await storage.save_post(post, [MatchRecord(subscription.id, USER, query, (Span(0, 3),))])


async def test_stats_sends_the_chats_chart_as_a_photo(
    storage: Storage, chat: Chat, api: FakeBotAPI
) -> None:
    assert await chat.say("/stats") == TEXTS.texts("en")("stats-chart-empty")
    await chat.say("/subscribe Oreshnik")
    await chat.say("/subscribe INF")
    for number, (query, days_ago) in enumerate(
        [("Oreshnik", 0.1), ("Oreshnik", 1.2), ("Oreshnik", 1.3), ("INF", 3.5), ("INF", 20)]
    ):
        await _matched(storage, number, query, days_ago)
    caption = await chat.say("/stats")
    photo = api.sent_to(USER)[-1]
    assert photo.method.lower() == "sendphoto"
    assert caption.startswith("📈 Mentions of your queries per day, ")
    assert photo.file is not None
    image = Image.open(io.BytesIO(photo.file))
    assert (image.format, image.size) == ("PNG", (1080, 1080))


async def test_stats_chart_caption_speaks_the_chats_language(
    storage: Storage, chat: Chat, api: FakeBotAPI
) -> None:
    await chat.say("/lang ru")
    await chat.say("/subscribe Орешник")
    await _matched(storage, 1, "Орешник", 0.5)
    assert (await chat.say("/stats")).startswith("📈 Упоминания ваших запросов по дням, ")
