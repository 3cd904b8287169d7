"""Folding near-duplicate posts: a table of reposts that must fold and of posts that must not.

Each row is what a reader of a digest would notice: the same story shown twice, or two stories
shown as one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.folding import (
    DEFAULT_WINDOW,
    THRESHOLD,
    Fingerprints,
    Story,
    fold,
    normalise,
    similarity,
)

NOW = datetime(2024, 11, 21, 12, 0, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Post:
    key: str
    text: str
    at: datetime = NOW


def fold_posts(posts: list[Post], fingerprints: Fingerprints | None = None) -> list[Story[Post]]:
    return fold(
        posts,
        key=lambda post: post.key,
        text=lambda post: post.text,
        when=lambda post: post.at,
        fingerprints=fingerprints,
    )


def keys(stories: list[Story[Post]]) -> list[list[str]]:
    return [[post.key for post in story.items] for story in stories]


# --- the posts -------------------------------------------------------------------------------

ORESHNIK_DNIPRO = (
    "Президент России Владимир Путин заявил, что 21 ноября Вооружённые силы РФ нанесли "
    "комбинированный удар по объекту оборонно-промышленного комплекса Украины в "
    "Днепропетровске. В боевом оснащении была испытана новейшая российская ракетная система "
    "средней дальности «Орешник» в безъядерном гиперзвуковом исполнении. По словам Путина, "
    "испытание прошло успешно, цель поражена. Он добавил, что средств противодействия такому "
    "оружию сегодня не существует."
)
ORESHNIK_DUTY = (
    "Министерство обороны России сообщило, что первый полк, вооружённый ракетным комплексом "
    "средней дальности «Орешник», заступил на боевое дежурство. Командующий РВСН Сергей "
    "Каракаев уточнил, что серийное производство комплекса уже налажено. По его словам, "
    "«Орешник» способен поразить цели на всей территории Европы, а перехватить его "
    "существующими средствами ПВО невозможно."
)
ORESHNIK_ANALYSIS = (
    "Что известно об «Орешнике». Судя по видео удара по Днепру, боевая часть несла шесть блоков, "
    "каждый из которых разделился на шесть суббоеприпасов, — схема, характерная для МБР "
    "«Рубеж» (РС-26). Американские официальные лица назвали ракету экспериментальной и "
    "сообщили, что Россия располагает лишь несколькими такими изделиями. Дальность, по "
    "оценке Пентагона, позволяет поражать цели по всей Европе, а подлётное время до Берлина "
    "составит около 15 минут."
)
INF_MORATORIUM = (
    "МИД России объявил, что Москва больше не считает себя связанной односторонним мораторием "
    "на развёртывание ракет средней и меньшей дальности. В заявлении ведомства говорится, что "
    "условия для сохранения моратория исчезли после размещения американских систем такого "
    "класса в Европе и Азиатско-Тихоокеанском регионе. Решения о конкретных параметрах "
    "ответных мер будет принимать руководство страны с учётом масштабов развёртывания ракет "
    "США."
)
RYABKOV_JUNE = (
    "Замглавы МИД Сергей Рябков заявил, что Россия пока соблюдает мораторий на размещение "
    "ракет средней и меньшей дальности, но его дальнейшая судьба зависит от действий "
    "Вашингтона. По словам дипломата, американские учения с пусковыми установками Typhon в "
    "Дании и на Филиппинах Москва рассматривает как шаг к отказу от сдержанности."
)
RYABKOV_DECEMBER = (
    "Замглавы МИД Сергей Рябков заявил, что мораторий на размещение ракет средней и меньшей "
    "дальности фактически утратил силу, а Россия оставляет за собой право на зеркальные меры. "
    "Дипломат подчеркнул, что диалог о контроле над вооружениями с нынешней администрацией "
    "США невозможен, пока Вашингтон не откажется от курса на нанесение стратегического "
    "поражения России."
)
ISKANDER_KHARKIV = (
    "Повітряні сили ЗСУ повідомили, що вночі росіяни атакували Харківщину балістичними ракетами "
    "«Іскандер-М» з Бєлгородської області. За даними обласної військової адміністрації, "
    "пошкоджено об'єкт критичної інфраструктури та кілька приватних будинків. Постраждали двоє "
    "людей, їм надано медичну допомогу. На місці працюють рятувальники ДСНС."
)
ISKANDER_SUMY = (
    "Росіяни вдарили по Сумах ракетою «Іскандер-М»: влучання зафіксовано в центрі міста поблизу "
    "адміністративної будівлі. Голова ОВА повідомив, що загинули троє цивільних, ще дванадцятеро "
    "поранені. Пуск, за даними Повітряних сил, здійснено з Курської області, збити ракету не "
    "вдалося."
)
SSC8 = (
    "The United States formally withdrew from the INF Treaty in 2019, citing Russia's deployment "
    "of the 9M729 ground-launched cruise missile, known to NATO as SSC-8. Washington said the "
    "missile could fly well beyond the 500-kilometre limit set by the treaty. Moscow has always "
    "denied the claim, insisting the 9M729 has a maximum range of 480 km. Several battalions "
    "armed with the system are believed to be deployed in the Western and Southern military "
    "districts."
)
SSC8_BRIEFING = (
    "At a 2019 briefing in Moscow, Russian officers displayed a 9M729 launch canister and said "
    "the missile was only 53 centimetres longer than its 9M728 predecessor. Western attachés "
    "boycotted the event, calling it a staged show that proved nothing about the missile's "
    "range. The Russian defence ministry said the demonstration showed its commitment to the "
    "INF Treaty."
)
BELARUS = (
    "Belarusian President Alexander Lukashenko said the first Oreshnik intermediate-range "
    "missile systems have been placed on combat duty in Belarus. He told state media that the "
    "launchers would remain under Russian control, while Minsk would choose the targets. "
    "Lukashenko added that up to ten systems could eventually be stationed in the country. "
    "Western officials have described the move as an escalation aimed at pressuring NATO's "
    "eastern flank."
)
BELARUS_PENTAGON = (
    "A Pentagon spokesman said the United States had seen no evidence that Oreshnik missile "
    "systems had arrived in Belarus, despite Lukashenko's claims. He said Washington was "
    "monitoring the situation closely and remained in contact with NATO allies on the "
    "eastern flank. The deployment, if confirmed, would place Oreshnik launchers within "
    "striking range of most European capitals."
)
AIR_DEFENCE_BRYANSK = (
    "Минобороны: в течение прошедшей ночи дежурными средствами ПВО перехвачены и уничтожены "
    "23 украинских беспилотных летательных аппарата самолётного типа над территорией Брянской "
    "области."
)
AIR_DEFENCE_KURSK = (
    "Минобороны: в течение прошедшего дня дежурными средствами ПВО перехвачены и уничтожены "
    "две тактические ракеты ATACMS производства США над территорией Курской области."
)
AIR_DEFENCE_NIGHT = (
    "Минобороны: в течение прошедшей ночи дежурными средствами ПВО перехвачены и уничтожены "
    "{} украинских беспилотных летательных {} самолётного типа над территорией {} области."
)
FLASH = (
    "Рябков: Россия больше не связана мораторием на размещение ракет средней и меньшей "
    "дальности. Решение принято в ответ на действия США в Европе и Азии."
)

# (name, original, repost) — each repost must fold with its original.
DUPLICATES: list[tuple[str, str, str]] = [
    # --- emoji --------------------------------------------------------------------------------
    ("emoji added", ORESHNIK_DNIPRO, "🚀⚡️ " + ORESHNIK_DNIPRO + " 🔥🔥🔥"),
    ("emoji changed", "🇷🇺 " + INF_MORATORIUM + " ❗️", "⚡ " + INF_MORATORIUM + " 👍🏻🤝"),
    ("emoji inside", ISKANDER_KHARKIV, ISKANDER_KHARKIV.replace("Постраждали", "🚑 Постраждали")),
    # --- links --------------------------------------------------------------------------------
    ("link added", ORESHNIK_DNIPRO, ORESHNIK_DNIPRO + "\n\nhttps://ria.ru/20241121/oreshnik.html"),
    (
        "link changed",
        INF_MORATORIUM + "\nt.me/rian_ru/271832",
        INF_MORATORIUM + "\nhttps://t.me/s/tass_agency/290112",
    ),
    ("www link", SSC8, SSC8 + " More: www.armscontrol.org/factsheets/INFtreaty"),
    # --- signatures ---------------------------------------------------------------------------
    ("subscribe line", ORESHNIK_DNIPRO, ORESHNIK_DNIPRO + "\n\nПодписаться | @milinfolive"),
    ("plain signature", ORESHNIK_DUTY, ORESHNIK_DUTY + "\n\nВоенный Осведомитель"),
    ("mention signature", INF_MORATORIUM, INF_MORATORIUM + "\n\n🔻 @milchronicles"),
    ("source line", BELARUS, BELARUS + "\n\nSource: Reuters"),
    ("ukrainian source", ISKANDER_KHARKIV, ISKANDER_KHARKIV + "\n\nДжерело: Суспільне Харків"),
    (
        "two signature lines",
        RYABKOV_JUNE,
        RYABKOV_JUNE + "\n\nИсточник: ТАСС\nПодписывайтесь на наш канал 👉 t.me/mil_news",
    ),
    ("join us", SSC8, SSC8 + "\n\nJoin us: @armscontrolwonk | Subscribe"),
    # --- words changed or added ---------------------------------------------------------------
    ("urgent prefix", ORESHNIK_DNIPRO, "СРОЧНО: " + ORESHNIK_DNIPRO),
    (
        "commentary added",
        ORESHNIK_DNIPRO,
        ORESHNIK_DNIPRO + " Это первое боевое применение ракеты средней дальности в истории.",
    ),
    (
        "commentary in front",
        BELARUS,
        "Big if true — and a clear signal to Warsaw and Vilnius. " + BELARUS,
    ),
    ("number changed", SSC8, SSC8.replace("480 km", "490 km")),
    ("number in words", BELARUS, BELARUS.replace("up to ten", "up to 12")),
    (
        "word replaced",
        ISKANDER_KHARKIV,
        ISKANDER_KHARKIV.replace("балістичними ракетами", "ракетами"),
    ),
    (
        "flash with commentary",
        FLASH,
        FLASH + " Давно пора: мораторий соблюдала только одна сторона.",
    ),
    (
        "short flash edited",
        FLASH,
        FLASH.replace("ракет", "ракетных комплексов").replace("Азии", "АТР"),
    ),
    # The hardest row: 24 words of news, 18 of commentary around them.
    (
        "flash with commentary on both sides",
        FLASH,
        "Вот и всё. "
        + FLASH
        + " Давно пора: мораторий соблюдала только одна сторона, а американцы тем временем "
        "везли Typhon в Данию.",
    ),
    (
        "truncated with a link",
        ORESHNIK_DNIPRO,
        ORESHNIK_DNIPRO.split(" По словам")[0] + " Подробнее: https://ria.ru/20241121/1985.html",
    ),
    # --- forwards, whitespace, quotes, ё ------------------------------------------------------
    ("forwarded", ORESHNIK_DUTY, "Forwarded from Рыбарь\n" + ORESHNIK_DUTY),
    ("forwarded ru", INF_MORATORIUM, "Переслано от: Два майора\n\n" + INF_MORATORIUM),
    ("line breaks", SSC8, SSC8.replace(". ", ".\n\n").replace(" the ", "  the ")),
    ("quotes", ORESHNIK_DNIPRO, ORESHNIK_DNIPRO.replace("«", '"').replace("»", '"')),
    ("yo", ORESHNIK_DUTY, ORESHNIK_DUTY.replace("ё", "е")),
    (
        "hashtags",
        ISKANDER_KHARKIV,
        ISKANDER_KHARKIV.replace("Харківщину", "#Харківщину") + "\n#Іскандер #новини",
    ),
    # --- all at once, as a busy channel reposts ----------------------------------------------
    (
        "everything",
        ORESHNIK_DNIPRO,
        "Forwarded from Военная хроника\n⚡️СРОЧНО⚡️\n\n"
        + ORESHNIK_DNIPRO.replace("ё", "е").replace("«", '"').replace("»", '"')
        + "\n\nhttps://t.me/milinfolive/135790\n\nПодписаться | @milinfolive",
    ),
]

# (name, one post, another) — different stories, however alike their subject.
DISTINCT: list[tuple[str, str, str]] = [
    ("two Oreshnik reports", ORESHNIK_DNIPRO, ORESHNIK_DUTY),
    ("launch and analysis", ORESHNIK_DNIPRO, ORESHNIK_ANALYSIS),
    ("duty and analysis", ORESHNIK_DUTY, ORESHNIK_ANALYSIS),
    ("one word and analysis", "Орешник", ORESHNIK_ANALYSIS),
    ("headline and report", "«Орешник» на боевом дежурстве", ORESHNIK_DUTY),
    ("Ryabkov on two days", RYABKOV_JUNE, RYABKOV_DECEMBER),
    ("moratorium and Ryabkov", INF_MORATORIUM, RYABKOV_DECEMBER),
    ("two Iskander strikes", ISKANDER_KHARKIV, ISKANDER_SUMY),
    ("9M729 background and briefing", SSC8, SSC8_BRIEFING),
    ("Lukashenko and the Pentagon", BELARUS, BELARUS_PENTAGON),
    ("two air-defence bulletins", AIR_DEFENCE_BRYANSK, AIR_DEFENCE_KURSK),
    # The hardest row: one template, another night — the number, the noun agreeing with it
    # and the region differ. (Had only the region changed, the two would fold: from text
    # alone, that is a repost with a word changed.)
    (
        "templated bulletins",
        AIR_DEFENCE_NIGHT.format(23, "аппарата", "Брянской"),
        AIR_DEFENCE_NIGHT.format(12, "аппаратов", "Курской"),
    ),
]


@pytest.mark.parametrize(
    ("original", "repost"),
    [pytest.param(original, repost, id=name) for name, original, repost in DUPLICATES],
)
def test_repost_folds_with_its_original(original: str, repost: str) -> None:
    stories = fold_posts([Post("a", original), Post("b", repost, NOW + timedelta(hours=3))])
    assert keys(stories) == [["a", "b"]]


@pytest.mark.parametrize(
    ("one", "another"),
    [pytest.param(one, another, id=name) for name, one, another in DISTINCT],
)
def test_different_stories_stay_apart(one: str, another: str) -> None:
    stories = fold_posts([Post("a", one), Post("b", another)])
    assert keys(stories) == [["a"], ["b"]]


def test_the_table_leaves_a_margin_around_the_threshold() -> None:
    """Duplicates and distinct posts keep a margin from THRESHOLD, beyond MinHash's error."""
    prints = Fingerprints()
    duplicates = [
        similarity(prints.make(original), prints.make(repost))
        for _, original, repost in DUPLICATES
    ]
    distinct = [similarity(prints.make(a), prints.make(b)) for _, a, b in DISTINCT]
    assert min(duplicates) >= THRESHOLD + 0.04
    assert max(distinct) <= THRESHOLD - 0.1


# --- normalise -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Ракета «Орешник»!", "ракета орешник"),
        ('Ракета "Орешник"…', "ракета орешник"),
        ("Ёлки, ЁЖИК", "елки ежик"),
        ("Оре́шник", "орешник"),  # a stress mark
        ("Ｏｒｅｓｈｎｉｋ", "oreshnik"),  # full-width letters
        ("🚀⚡️Пуск 👍🏻 👨‍👩‍👧 #Орешник", "пуск орешник"),
        ("Пуск  \n\n  ракеты\tсегодня", "пуск ракеты сегодня"),
        ("ОТРК Искандер-М, ракета 9М723", "отрк искандер м ракета 9м723"),
        ("Смотрите https://t.me/rybar/1 и www.mil.ru/news: пуск", "смотрите и пуск"),
        ("t.me/milinfolive пишет @Rybar: пуск", "пишет пуск"),
        ("Пуск\n\nПодписаться на канал | @milinfolive", "пуск"),
        ("Пуск\nПідписатися на канал", "пуск"),
        ("Launch\n\nSource: Reuters", "launch"),
        ("Пуск\n\n🇷🇺 @milinfolive\nt.me/milinfolive", "пуск"),
        ("Forwarded from Рыбарь\nПуск ракеты", "пуск ракеты"),
        # A long last line that happens to begin like a signature is text.
        (
            "Пуск\nИсточник в Минобороны сообщил, что ракета пролетела более тысячи километров",
            "пуск источник в минобороны сообщил что ракета пролетела более тысячи километров",
        ),
        ("Подписан закон", "подписан закон"),  # not a call to subscribe
        ("👍🏻🔥", ""),
        ("https://t.me/rybar/1", ""),
    ],
)
def test_normalise(text: str, expected: str) -> None:
    assert normalise(text) == expected


# --- time, keys, short texts, order ----------------------------------------------------------


def test_same_text_far_outside_the_window_does_not_fold() -> None:
    stories = fold_posts(
        [Post("a", ORESHNIK_DNIPRO), Post("b", ORESHNIK_DNIPRO, NOW + timedelta(days=3))]
    )
    assert keys(stories) == [["a"], ["b"]]


def test_window_is_measured_from_the_lead_either_way() -> None:
    inside = DEFAULT_WINDOW - timedelta(minutes=1)
    stories = fold_posts(
        [
            Post("lead", ORESHNIK_DNIPRO),
            Post("earlier", ORESHNIK_DNIPRO, NOW - inside),
            Post("later", ORESHNIK_DNIPRO, NOW + inside),
            # Within the window of "later" but not of the lead: no chaining through members.
            Post("much later", ORESHNIK_DNIPRO, NOW + inside + inside),
        ]
    )
    assert keys(stories) == [["lead", "earlier", "later"], ["much later"]]


def test_same_key_always_folds() -> None:
    stories = fold_posts(
        [
            Post("a", ORESHNIK_DNIPRO),
            Post("x", SSC8),
            Post("a", "edited text, nothing like the first", NOW + timedelta(days=5)),
            Post("short", "👍"),
            Post("short", "👍"),
        ]
    )
    assert keys(stories) == [["a", "a"], ["x"], ["short", "short"]]


def test_same_key_joins_the_story_of_a_member() -> None:
    stories = fold_posts(
        [Post("a", ORESHNIK_DNIPRO), Post("b", "СРОЧНО: " + ORESHNIK_DNIPRO), Post("b", "")]
    )
    assert keys(stories) == [["a", "b", "b"]]


def test_near_empty_posts_do_not_fold_with_each_other() -> None:
    posts = [
        Post("emoji", "🔥🔥🔥"),
        Post("emoji again", "🔥🔥🔥"),
        Post("link", "https://t.me/rybar/64001"),
        Post("link again", "https://t.me/rybar/64001"),
        Post("word", "Орешник"),
        Post("word again", "Орешник!"),
        Post("two words", "Орешник запущен"),
        Post("two words again", "Орешник запущен"),
        Post("empty", ""),
        Post("empty again", "   "),
    ]
    assert keys(fold_posts(posts)) == [[post.key] for post in posts]


def test_three_words_are_enough() -> None:
    stories = fold_posts([Post("a", "Орешник запущен снова"), Post("b", "ОРЕШНИК запущен снова!")])
    assert keys(stories) == [["a", "b"]]


def test_lead_is_the_first_item_and_order_is_kept() -> None:
    posts = [
        Post("ssc8", SSC8),
        Post("dnipro", ORESHNIK_DNIPRO),
        Post("dnipro urgent", "СРОЧНО: " + ORESHNIK_DNIPRO),
        Post("moratorium", INF_MORATORIUM),
        Post("ssc8 via", SSC8 + "\n\nSource: Reuters"),
        Post("dnipro emoji", "🚀 " + ORESHNIK_DNIPRO),
        Post("belarus", BELARUS),
        Post("moratorium link", INF_MORATORIUM + "\nhttps://t.me/tass_agency/1"),
    ]
    stories = fold_posts(posts)
    assert keys(stories) == [
        ["ssc8", "ssc8 via"],
        ["dnipro", "dnipro urgent", "dnipro emoji"],
        ["moratorium", "moratorium link"],
        ["belarus"],
    ]
    assert stories[1].lead is posts[1]
    assert stories[1].others == (posts[2], posts[5])


def test_an_item_joins_the_first_story_it_duplicates() -> None:
    # The repost is close to both leads; it goes to the earlier one.
    long_version = ORESHNIK_DNIPRO + " Это первое боевое применение такого оружия."
    stories = fold_posts(
        [
            Post("short", ORESHNIK_DNIPRO),
            Post("other", SSC8),
            Post("repost", "СРОЧНО: " + long_version),
        ]
    )
    assert keys(stories) == [["short", "repost"], ["other"]]


def test_empty_input() -> None:
    assert fold_posts([]) == []


# --- the fingerprint cache -------------------------------------------------------------------


def test_cache_returns_the_same_fingerprint_for_a_key() -> None:
    prints = Fingerprints()
    first = prints.get("post-1", ORESHNIK_DNIPRO)
    assert prints.get("post-1", ORESHNIK_DNIPRO) is first
    assert prints.get("post-1", "the text is not read again") is first
    assert prints.get("post-2", ORESHNIK_DNIPRO) is not first
    assert similarity(prints.get("post-2", ORESHNIK_DNIPRO), first) == 1.0
    assert len(prints) == 2


def test_cache_evicts_the_oldest_made() -> None:
    prints = Fingerprints(max_entries=2)
    first = prints.get(1, ORESHNIK_DNIPRO)
    prints.get(2, SSC8)
    assert prints.get(1, ORESHNIK_DNIPRO) is first  # cached: the same object
    prints.get(3, BELARUS)  # the cache is full: the oldest made (1) goes
    assert len(prints) == 2
    assert 1 not in prints
    assert 2 in prints
    assert 3 in prints
    assert prints.get(1, ORESHNIK_DNIPRO) is not first  # made again


def test_fold_fills_the_cache_it_is_given() -> None:
    prints = Fingerprints()
    posts = [Post("a", ORESHNIK_DNIPRO), Post("b", SSC8)]
    fold_posts(posts, prints)
    cached = prints.get("a", "")
    assert fold_posts(posts, prints) == fold_posts(posts)
    assert prints.get("a", "") is cached


def test_signatures_do_not_depend_on_the_process() -> None:
    """Band keys are fixed numbers (a fixed seed, unsalted hashes), not per-process values."""
    one, other = Fingerprints(), Fingerprints()
    assert one.make(BELARUS).bands == other.make(BELARUS).bands
    assert (one.make(BELARUS).hashvalues == other.make(BELARUS).hashvalues).all()


# --- fold partitions its input ---------------------------------------------------------------

TEXTS = [
    ORESHNIK_DNIPRO,
    "СРОЧНО: " + ORESHNIK_DNIPRO,
    ORESHNIK_DUTY,
    SSC8,
    SSC8 + "\nSource: Reuters",
    BELARUS,
    "Орешник",
    "🔥",
    "",
]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=12),  # key: small, so that keys repeat
            st.sampled_from(TEXTS),
            st.integers(min_value=0, max_value=72),  # hours after NOW
        ),
        max_size=30,
    )
)
def test_fold_partitions_the_input(rows: list[tuple[int, str, int]]) -> None:
    posts = [Post(str(k), text, NOW + timedelta(hours=h)) for k, text, h in rows]
    stories = fold_posts(posts)
    folded = [post for story in stories for post in story.items]
    assert sorted(map(id, folded)) == sorted(map(id, posts))
    # Leads come in input order, and each story's others after its lead, in input order.
    position = {id(post): index for index, post in enumerate(posts)}
    leads = [position[id(story.lead)] for story in stories]
    assert leads == sorted(leads)
    for story in stories:
        places = [position[id(post)] for post in story.items]
        assert places == sorted(places)
