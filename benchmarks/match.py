"""Matching throughput: Dozor's subscription index against the naive regex-per-subscription loop.

What is measured. For 100, 1,000, 10,000 and 100,000 subscriptions, posts per second through
`QueryIndex.match` (the whole call: tokenising, candidate look-up, evaluation, building the
hits), over ~2,000 generated posts, best of two passes; and how long building the index takes
(cold: a fresh `FormExpander`, so every term's forms are expanded as at service start).

The data is generated deterministically (`random.Random(SEED)`) to look like what Dozor sees:

* ~1,500 tracked terms that arms-control and OSINT analysts follow: hand-written weapons in
  Cyrillic and Latin spelling, codes, treaties and acronyms, places, people and organisations,
  plus generated surnames, place names, brigade and military-unit numbers and missile codes.
  Popularity is Zipf-like (rank ** -1), so a few terms appear in very many queries, and
  identical queries of different subscribers occur as they do in real use.
* Queries in realistic shapes: single term ~45%, `A OR B [OR C]` ~20%, `A B` ~10%,
  phrase ~10%, `A -B` ~8%, `(A OR B) C` ~4%, `prefix*` ~2%, `/regex/` ~1%.
* Posts of ~60 words in Russian, Ukrainian or English news style: common vocabulary (Russian
  and Ukrainian words in pymorphy3's inflected forms), 0–3 tracked terms per post (same Zipf
  ranking), often inflected (`Орешника`, `Искандером`), in Ukrainian spelling (`Орєшнік`),
  with look-alike letters in codes (`9M729` for `9М729`), plus hashtags, links and @mentions.

Why this baseline. Typical keyword bots keep one compiled regex per subscription and try every
one on every post, so their cost grows linearly with subscriptions. The baseline here is that
loop, measured in the same run on an evenly spaced sample of the same posts (sized to take
~2 s, at least 5 posts): per subscription one `re.compile(..., re.IGNORECASE)` pattern, the
alternation of the query's positive terms, each `\\b`-bounded (a phrase's words joined by
`\\s+`, `word*` as `\\bword`, a `/regex/` as written); exclusions are ignored and AND queries use
the same alternation, so it is one `search` per subscription per post — the cheapest honest form
of the loop, which makes the reported ratio conservative. It knows no word forms, scripts or
aliases, so it also finds fewer matches (its hits per post are printed for comparison).

Absolute numbers vary between machines; the ratio and the scaling between counts are what to
compare. Goals (one core): at 10,000 subscriptions >= 5,000 posts/s and >= 100x the baseline;
at 100,000 subscriptions >= a third of the rate at 1,000.
"""

from __future__ import annotations

import gc
import random
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import pymorphy3

from bot.domain import Subscription
from bot.matching import QueryIndex, parse_query
from bot.matching.forms import FormExpander

SEED = 20250611
COUNTS = (100, 1_000, 10_000, 100_000)
POST_COUNT = 2_000
TERM_TARGET = 1_500
ZIPF_EXPONENT = 1.0
INDEX_PASSES = 2
BASELINE_SECONDS = 2.0
BASELINE_MIN_POSTS = 5

# --- hand-written vocabulary -------------------------------------------------------------------
# One line per thing; spellings of the same thing are separated by "|" and each is a term of its
# own (subscribers write one or the other, or `A OR B`). Headline items (with their kind) come
# first: they are the most popular; the rest of the lists is ranked after them, shuffled.

HEADLINE = """
weapon: Орешник|Oreshnik
treaty: РСМД|INF|ДРСМД
treaty: мораторий|moratorium
weapon: Искандер|Iskander
code: 9М729|SSC-8
weapon: Калибр|Kalibr
weapon: Кинжал|Kinzhal
place: Беларусь|Belarus|Белоруссия
place: Капустин Яр|Kapustin Yar
weapon: Сармат|Sarmat
weapon: Буревестник|Burevestnik
treaty: New START|СНВ-3|ДСНВ
weapon: Циркон|Zircon|Tsirkon
weapon: Ярс|Yars
weapon: Посейдон|Poseidon
place: Калининград|Kaliningrad
code: Х-101|Kh-101
code: Ту-95МС|Tu-95MS
treaty: ДВЗЯИ|CTBT
place: Плесецк|Plesetsk
"""

WEAPONS = """
Авангард|Avangard
Булава|Bulava
Рубеж|Rubezh
Тополь|Topol
Тополь-М|Topol-M
Искандер-М|Iskander-M|SS-26
Воевода|Voyevoda
Синева|Sineva
Лайнер|Liner
Пересвет|Peresvet
Кедр
Оникс|Onyx
Бастион|Bastion
Бал
Панцирь|Pantsir
Триумф|Triumf
Прометей
Торнадо-С
Смерч|Smerch
Ураган|Uragan
Точка-У|Tochka-U
Ланцет|Lancet
Герань|Geran
Шахед|Shahed
Томагавк|Tomahawk
ATACMS
Storm Shadow
SCALP
Taurus
HIMARS
Patriot
Dark Eagle
Typhon|Тайфун
Minuteman
Sentinel
Trident
LRHW
PrSM
Aegis Ashore
Хвасон-18|Hwasong-18
Pukguksong
DF-26
DF-41
DF-17
JL-3
Agni-V
Fattah
Sejjil
Kheibar Shekan
"""

CODES = """
9М728|SSC-7
9К720
9М723
9М730
Х-102|Kh-102
Х-555
Х-22|Kh-22
Х-32|Kh-32
Х-47М2|Kh-47M2
3М14|SS-N-30A
3М22
3М55
Р-500
РС-24|RS-24
РС-28|RS-28
РС-26|RS-26
Р-36М2
SS-18
SS-27
SS-N-27
Су-34|Su-34
Су-35|Su-35
Су-57|Su-57
Су-24М
Су-30СМ
Ту-160|Tu-160
Ту-160М
Ту-22М3|Tu-22M3
МиГ-31К|MiG-31K
Ил-76
А-50|A-50
С-400|S-400
С-500|S-500
С-300
С-550
"""

TREATIES = """
CTBTO|ОДВЗЯИ
NPT|ДНЯО
Open Skies|Открытое небо
ДОВСЕ|CFE
IAEA|МАГАТЭ
NATO|НАТО
Vienna Document|Венский документ
TPNW|ДЗЯО
no first use
ТЯО|NSNW
нестратегическое ядерное оружие
nuclear test|ядерное испытание
ядерная доктрина|nuclear doctrine
nuclear sharing
extended deterrence
стратегическая стабильность|strategic stability
arms control|контроль над вооружениями
ICBM|МБР
SLBM|БРПЛ
ГЗЛА
hypersonic|гиперзвуковой
тактическое ядерное оружие
"""

PLACES = """
Новая Земля|Novaya Zemlya
Семипалатинск
Сары-Шаган|Sary-Shagan
Кура|Kura
Домбаровский|Dombarovsky
Ясный
Козельск|Kozelsk
Татищево
Ужур
Йошкар-Ола
Тейково
Энгельс|Engels
Оленья|Olenya
Шайковка|Shaykovka
Моздок
Ахтубинск|Akhtubinsk
Лида
Барановичи
Мачулищи
Осиповичи|Asipovichy
Крым|Crimea
Севастополь|Sevastopol
Североморск
Гаджиево
Вилючинск
Белгород
Брянск
Курск
Воронеж
Таганрог
Миллерово
Морозовск
Днепр|Dnipro
Южмаш|Yuzhmash|Pivdenmash
Ramstein
Rzeszów|Жешув
Redzikowo|Редзиково
Deveselu|Девеселу
Büchel
Kleine Brogel
Aviano
Incirlik
Volkel
Lakenheath
Гомель
Мозырь
Брест
Гродно
Минск|Minsk
Suwalki gap|Сувалкский коридор
Балтийск
Черняховск|Chernyakhovsk
Саров|Sarov
Снежинск|Snezhinsk
Воткинск|Votkinsk
"""

PEOPLE = """
Путин|Putin
Лукашенко|Lukashenko
Шойгу|Shoigu
Белоусов|Belousov
Герасимов|Gerasimov
Рябков|Ryabkov
Медведев|Medvedev
Песков|Peskov
Лавров|Lavrov
Каракаев|Karakayev
Соломонов
Трамп|Trump
Байден|Biden
Рютте|Rutte
Зеленский|Zelensky
Буданов|Budanov
Хренин|Khrenin
Вольфович
Ульянов|Ulyanov
Гросси|Grossi
"""

ORGANISATIONS = """
Росатом|Rosatom
ВНИИЭФ
ВНИИТФ
РВСН
ВКС
Дальняя авиация|Long-Range Aviation
12 ГУМО
ГУР|HUR
НПО машиностроения
"""

# Words that put a name in context: in posts ("комплекс «Искандер»", "INF Treaty") and in
# phrase queries. Per kind and script: words written before the name, and words after it.
CONTEXT: dict[tuple[str, str], tuple[tuple[str, ...], tuple[str, ...]]] = {
    ("weapon", "cyr"): (("комплекс", "ракета", "система", "удар"), ()),
    ("weapon", "lat"): (("missile", "system"), ("missile", "launcher")),
    ("code", "cyr"): (("ракета", "самолет", "изделие"), ()),
    ("code", "lat"): (("missile",), ("missile", "aircraft")),
    ("treaty", "cyr"): (("договор", "режим"), ()),
    ("treaty", "lat"): ((), ("Treaty", "regime")),
    ("place", "cyr"): (("полигон", "аэродром", "район"), ()),
    ("place", "lat"): (("near",), ("airbase", "region")),
    ("person", "cyr"): (("генерал", "министр", "глава"), ()),
    ("person", "lat"): (("General", "minister"), ()),
}

# Ukrainian spelling of popular names (folding meets some of them, not Кинджал or Буревісник).
UKRAINIAN = {
    "Орешник": "Орєшнік",
    "Искандер": "Іскандер",
    "Калибр": "Калібр",
    "Кинжал": "Кинджал",
    "Буревестник": "Буревісник",
    "мораторий": "мораторій",
    "Белоруссия": "Білорусь",
    "Калининград": "Калінінград",
    "Плесецк": "Плесецьк",
    "Посейдон": "Посейдон",
}

# The other side of `A -B`: the false friends subscribers exclude.
NOISE = (
    "лещина",
    "hazel",
    "орех",
    "футбол",
    "игра",
    "game",
    "calibration",
    "калибровка",
    "погода",
    "акции",
    "гороскоп",
    "FIFA",
)

REGEXES = (
    r"9[МM]7\d\d",
    r"[ХX]-\d{2,3}",
    r"Ту-(95|160|22)",
    r"[РP][СC]-2[4-8]",
    r"Су-3[045]",
    r"SSC-\d+",
    r"ядерн\w+ испытани\w+",
    r"Орешник\w*|Oreshnik",
)

# --- generated vocabulary ----------------------------------------------------------------------

NAME_ROOTS = (
    "Бел Бор Вол Ворон Гор Гран Дуб Жар Зим Кар Клим Кос Крас Кузн Лав Лебед Мак Мал Мороз Нов"
    " Ор Пан Пет Раз Род Рыб Сав Сед Сок Стар Суд Тар Тих Фед Хар Чер Шаб Шир Щег Юр Яков Аст"
    " Бур Ган Дем Ерм Жел Ив Кисл Луч"
).split()
NAME_MIDDLES = ("", "", "", "ан", "ен", "ол", "ир", "ух", "ат")
NAME_ENDINGS = ("ов", "ов", "ев", "ин", "ский", "енко", "ук", "ич")
PLACE_ROOTS = (
    "Бел Крас Нов Стар Сол Лес Камен Озер Сосн Бер Яр Гор Свет Ключ Луг Степ Дуб Лип Ольх Кедр"
    " Сев Зар Тих Быстр Глух Мох Сух Чист Тёпл Верх"
).split()
PLACE_ENDINGS = ("огорск", "озаводск", "ово", "ино", "ое", "ск", "оград", "ополье", "инка", "овка")

_TRANSLIT = dict(
    zip(
        "абвгдеёжзийклмнопрстуфхцчшщъыьэюя",
        "a b v g d e e zh z i y k l m n o p r s t u f kh ts ch sh shch _ y _ e yu ya".split(),
        strict=True,
    )
)


def translit(word: str) -> str:
    """A plain Latin spelling of a Cyrillic name (`Белов` → `Belov`)."""
    latin = "".join(_TRANSLIT.get(c, c) for c in word.lower()).replace("_", "")
    return latin[:1].upper() + latin[1:]


@dataclass(frozen=True, slots=True)
class Term:
    """A tracked term as subscribers write it, with what kind of thing it names."""

    text: str
    kind: str
    script: str


def script_of(text: str) -> str:
    """'cyr' if the text has Cyrillic letters, else 'lat' (codes and acronyms included)."""
    return "cyr" if re.search(r"[а-яёєіїґ]", text, re.IGNORECASE) else "lat"


def has_digit(term: Term) -> bool:
    return any(char.isdigit() for char in term.text)


def parse_lines(block: str) -> list[list[str]]:
    return [line.split("|") for line in block.strip().splitlines()]


def build_vocabulary(rng: random.Random) -> tuple[list[Term], dict[str, list[str]]]:
    """~TERM_TARGET terms ranked by popularity, and the other spellings of each term."""
    headline = [line.split(": ") for line in HEADLINE.strip().splitlines()]
    groups = [(kind, spellings.split("|")) for kind, spellings in headline]
    kinds = {"weapon": WEAPONS, "code": CODES, "treaty": TREATIES, "place": PLACES}
    kinds |= {"person": PEOPLE, "org": ORGANISATIONS}
    rest = [(kind, group) for kind, block in kinds.items() for group in parse_lines(block)]
    rng.shuffle(rest)
    hand = [(kind, spelling) for kind, group in groups + rest for spelling in group]
    partners = {s: [o for o in group if o != s] for _, group in groups + rest for s in group}

    generated: list[tuple[str, str]] = []
    seen = {text.casefold() for _, text in hand}

    def add(kind: str, text: str) -> bool:
        if text.casefold() in seen:
            return False
        seen.add(text.casefold())
        generated.append((kind, text))
        return True

    room = TERM_TARGET - len(hand)
    quotas = {"person": 0.40, "place": 0.25, "brigade": 0.10, "unit": 0.10, "code": 0.15}
    targets = {kind: round(room * share) for kind, share in quotas.items()}
    while targets["person"] > 0:
        name = rng.choice(NAME_ROOTS) + rng.choice(NAME_MIDDLES) + rng.choice(NAME_ENDINGS)
        if add("person", name):
            targets["person"] -= 1
            if rng.random() < 0.25 and targets["person"] > 0 and add("person", translit(name)):
                partners[name] = [translit(name)]
                partners[translit(name)] = [name]
                targets["person"] -= 1
    while targets["place"] > 0:
        place = rng.choice(PLACE_ROOTS) + rng.choice(PLACE_ENDINGS)
        targets["place"] -= add("place", place)
    while targets["brigade"] > 0:
        targets["brigade"] -= add("brigade", f"бригада {rng.randint(1, 250)}")
    while targets["unit"] > 0:
        targets["unit"] -= add("unit", f"в/ч {rng.randint(1000, 99999):05d}")
    while targets["code"] > 0:
        family = rng.choice(("9М7", "9М7", "9М3", "Х-", "3М"))
        targets["code"] -= add("code", f"{family}{rng.randint(0, 99):02d}")
    rng.shuffle(generated)
    terms = [Term(text, kind, script_of(text)) for kind, text in hand + generated]
    return terms, partners


# --- Zipf sampling ------------------------------------------------------------------------------


class Zipf:
    """Items drawn with probability proportional to rank ** -exponent (in the given order)."""

    def __init__(self, items: Sequence[Term], exponent: float = ZIPF_EXPONENT) -> None:
        self.items = list(items)
        self.cumulative: list[float] = []
        total = 0.0
        for rank in range(1, len(self.items) + 1):
            total += rank**-exponent
            self.cumulative.append(total)

    def draw(self, rng: random.Random) -> Term:
        return rng.choices(self.items, cum_weights=self.cumulative)[0]

    def draw_distinct(self, rng: random.Random, count: int) -> list[Term]:
        chosen: list[Term] = []
        while len(chosen) < count:
            term = self.draw(rng)
            if term not in chosen:
                chosen.append(term)
        return chosen


# --- queries ------------------------------------------------------------------------------------

SHAPES = (
    ("term", 45),
    ("or", 20),
    ("and", 10),
    ("phrase", 10),
    ("not", 8),
    ("group", 4),
    ("prefix", 2),
    ("regex", 1),
)


@dataclass(frozen=True, slots=True)
class GeneratedQuery:
    """A query as a subscriber writes it, and the regex a naive bot would use for it."""

    text: str
    naive: str
    shape: str


def quoted(text: str) -> str:
    return f'"{text}"' if " " in text else text


def naive_part(text: str) -> str:
    r"""One positive term as a naive bot searches it: `\b`-bounded, a phrase's words by `\s+`."""
    return r"\b" + r"\s+".join(re.escape(word) for word in text.split()) + r"\b"


def context_words(term: Term) -> tuple[tuple[str, ...], tuple[str, ...]]:
    return CONTEXT.get((term.kind, term.script), ((), ()))


def make_query(rng: random.Random, zipf: Zipf, partners: dict[str, list[str]]) -> GeneratedQuery:
    shape = rng.choices([s for s, _ in SHAPES], weights=[w for _, w in SHAPES])[0]
    if shape == "term":
        name = zipf.draw(rng).text
        return GeneratedQuery(quoted(name), naive_part(name), shape)
    if shape == "or":
        first = zipf.draw(rng)
        if partners.get(first.text) and rng.random() < 0.5:
            names = [first.text, *partners[first.text][:2]]  # Орешник OR Oreshnik
        else:
            names = [t.text for t in zipf.draw_distinct(rng, rng.choice((2, 2, 3)))]
        text = " OR ".join(quoted(name) for name in names)
        return GeneratedQuery(text, "|".join(naive_part(name) for name in names), shape)
    if shape == "and":
        names = [t.text for t in zipf.draw_distinct(rng, 2)]
        text = " ".join(quoted(name) for name in names)
        return GeneratedQuery(text, "|".join(naive_part(name) for name in names), shape)
    if shape == "phrase":
        while True:
            term = zipf.draw(rng)
            before, after = context_words(term)
            if " " in term.text:
                phrase = term.text
            elif before and (not after or rng.random() < 0.5):
                phrase = f"{rng.choice(before)} {term.text}"
            elif after:
                phrase = f"{term.text} {rng.choice(after)}"
            else:
                continue
            return GeneratedQuery(f'"{phrase}"', naive_part(phrase), shape)
    if shape == "not":
        term = zipf.draw(rng)
        excluded = rng.choice(NOISE) if rng.random() < 0.5 else zipf.draw(rng).text
        if excluded == term.text:
            excluded = rng.choice(NOISE)
        text = f"{quoted(term.text)} -{quoted(excluded)}"
        return GeneratedQuery(text, naive_part(term.text), shape)
    if shape == "group":
        a, b, c = (t.text for t in zipf.draw_distinct(rng, 3))
        text = f"({quoted(a)} OR {quoted(b)}) {quoted(c)}"
        return GeneratedQuery(text, "|".join(naive_part(n) for n in (a, b, c)), shape)
    if shape == "prefix":
        while True:
            word = zipf.draw(rng).text
            if word.isalpha() and len(word) >= 5 and not word.isupper():
                stem = word[: max(4, len(word) - 2)]
                return GeneratedQuery(f"{stem}*", r"\b" + re.escape(stem), shape)
    pattern = REGEXES[min(int(rng.paretovariate(1.2)) - 1, len(REGEXES) - 1)]
    return GeneratedQuery(f"/{pattern}/", pattern, shape)


# --- posts --------------------------------------------------------------------------------------

RU_WORDS = """
ракета пуск удар комплекс учения дивизион бригада полигон источник сообщать заявить
министерство оборона армия военный ядерный стратегический баллистический крылатый
гиперзвуковой дальность боеголовка боевой дежурство развертывание размещение испытание
запуск носитель самолет бомбардировщик подводный лодка флот граница территория область
регион спутник снимок аналитик эксперт данные информация версия официальный представитель
ведомство президент правительство заявление переговоры договор соглашение контроль
вооружение сокращение угроза безопасность ответ мера решение неделя месяц год день ночь
утро вечер время сила войска командование штаб база аэродром склад объект инфраструктура
поражение цель перехват система радиолокационный станция колонна техника транспорт пусковой
установка машина расчет подготовка тренировка маневр готовность поставка производство завод
предприятие серийный новый старый российский американский европейский белорусский
украинский китайский западный восточный северный южный крупный важный первый второй
последний показать опубликовать подтвердить отметить добавить сказать провести начать
завершить получить перебросить зафиксировать обнаружить уничтожить поразить запустить сбить
разместить продолжать планировать ожидать появиться канал сообщение фото видео кадр
публикация новость агентство журналист глава министр генерал командир полк дивизия батальон
подразделение часть район город село направление фронт атака обстрел взрыв пожар
повреждение ущерб потеря эскалация сигнал сдерживание доктрина политика позиция мир война
конфликт кризис сторона страна союзник партнер
"""
RU_FUNCTION = """
в на по с и что не о из за к для от у как это также уже еще при после до около более а но
или который его их она они был была было будет может же ли только все по-прежнему
"""
UK_WORDS = """
ракета пуск удар комплекс навчання бригада полігон джерело повідомляти заявити міністерство
оборона армія військовий ядерний стратегічний балістичний крилатий гіперзвуковий дальність
боєголовка бойовий чергування розгортання розміщення випробування запуск носій літак
бомбардувальник підводний човен флот кордон територія область регіон супутник знімок
аналітик експерт дані інформація офіційний представник відомство президент уряд заява
переговори договір угода контроль озброєння скорочення загроза безпека відповідь рішення
тиждень місяць рік день ніч ранок вечір час сила війська командування штаб база аеродром
склад об'єкт ціль перехоплення система станція колона техніка установка машина розрахунок
підготовка готовність постачання виробництво завод новий російський американський
європейський білоруський український китайський західний перший показати опублікувати
підтвердити зазначити додати сказати провести почати отримати перекинути зафіксувати виявити
знищити уразити запустити збити розмістити продовжувати планувати очікувати з'явитися канал
повідомлення фото відео новина агентство журналіст міністр генерал командир полк дивізія
батальйон підрозділ частина район місто село напрямок фронт атака обстріл вибух пожежа
пошкодження ескалація сигнал стримування доктрина політика позиція війна конфлікт країна
союзник партнер
"""
UK_FUNCTION = """
в у на по з і та що не про із за до для від як це також вже ще при після біля понад а але або
який його їх вона вони був була було буде може ж чи лише все
"""
EN_WORDS = """
missile missiles launch launched launches strike strikes system systems exercise exercises
drills brigade division range test tested testing sources report reports reported said says
ministry defence defense army military nuclear strategic ballistic cruise hypersonic warhead
warheads combat duty deployment deployed deploy stationing launcher launchers aircraft bomber
bombers submarine fleet border territory region satellite imagery image images analysts
analyst expert experts data official officials spokesperson president government statement
talks treaty agreement control arms reduction threat security response decision week month
year day night morning evening time forces command headquarters base airfield depot facility
infrastructure target targets intercept intercepted radar station convoy vehicles vehicle
transport crew preparation training readiness delivery production plant factory new old
Russian American European Belarusian Ukrainian Chinese Western northern southern major first
second last showed published confirmed noted added told conducted started completed received
moved recorded spotted destroyed hit shot down plans expected appeared channel post photo
video footage news agency journalist minister general commander regiment battalion unit units
area city village direction front attack shelling explosion fire damage losses escalation
signal deterrence doctrine policy position war conflict crisis side country allies partner
according open-source
"""
EN_FUNCTION = """
the a an of in on and to that at by for with from as is was were has have had it its this
which not after near about more than but or will would could may also
"""
HASHTAGS = ("#OSINT", "#новости", "#срочно", "#Україна", "#news", "#Russia", "#ВПК", "#армия")
CHANNELS = ("rybar", "milinfolive", "DefenceU", "warfare_ru", "nuclear_notes", "osint_by")
LANGUAGES = (("ru", 50), ("uk", 20), ("en", 30))
TERMS_PER_POST = ((0, 20), (1, 40), (2, 28), (3, 12))


def same_case(model: str, form: str) -> str:
    """Give `form` the capitalisation of `model` (`Орешник`, `орешника` → `Орешника`)."""
    if model.isupper() and len(model) > 1:
        return form.upper()
    if model[:1].isupper():
        return form[:1].upper() + form[1:]
    return form


USUAL_POS = frozenset({"NOUN", "ADJF", "INFN", "VERB", "PRTF", "GRND"})
UNUSUAL_GRAMMEMES = frozenset(
    {"voct", "impr", "1per", "2per", "Supr", "Cmp2", "Infr", "Slng", "Arch", "Erro", "Dist"}
)


class Inflector:
    """Russian and Ukrainian word forms from the pymorphy3 dictionaries, cached per word."""

    def __init__(self) -> None:
        self._analyzers = {
            "ru": pymorphy3.MorphAnalyzer(lang="ru"),
            "uk": pymorphy3.MorphAnalyzer(lang="uk"),
        }
        self._cache: dict[tuple[str, str, bool], tuple[str, ...]] = {}

    def forms(self, word: str, lang: str, singular: bool = False) -> tuple[str, ...]:
        """Forms news text uses: no comparatives, vocatives, imperatives or spelling variants."""
        key = (word.casefold(), lang, singular)
        if key not in self._cache:
            parse = self._analyzers[lang].parse(key[0])[0]
            forms = dict.fromkeys(
                form.word
                for form in parse.lexeme
                if form.tag.POS in USUAL_POS
                and not form.tag.grammemes & UNUSUAL_GRAMMEMES
                and not any(g.startswith("V-") for g in form.tag.grammemes)
                and not (singular and "plur" in form.tag.grammemes)
                and "-" not in form.word
            )
            self._cache[key] = tuple(forms) or (key[0],)
        return self._cache[key]

    def inflect(self, word: str, lang: str, rng: random.Random, singular: bool = False) -> str:
        return same_case(word, rng.choice(self.forms(word, lang, singular)))


@dataclass(frozen=True, slots=True)
class Lexicon:
    """The common words of one language: forms of content words, and function words."""

    content: list[tuple[str, ...]]
    function: list[str]


def build_lexicons(inflector: Inflector) -> dict[str, Lexicon]:
    ru = [inflector.forms(word, "ru") for word in RU_WORDS.split()]
    uk = [inflector.forms(word, "uk") for word in UK_WORDS.split()]
    en: list[tuple[str, ...]] = [(word,) for word in EN_WORDS.split()]
    return {
        "ru": Lexicon(ru, RU_FUNCTION.split()),
        "uk": Lexicon(uk, UK_FUNCTION.split()),
        "en": Lexicon(en, EN_FUNCTION.split()),
    }


def render_term(term: Term, lang: str, rng: random.Random, inflector: Inflector) -> str:
    """How a post mentions a term: inflected, respelled, quoted, with a word of context."""
    text = term.text
    slavic = lang in ("ru", "uk")
    if slavic and term.script == "cyr":
        if lang == "uk" and text in UKRAINIAN and rng.random() < 0.7:
            text = UKRAINIAN[text]
        words = text.split()
        inflectable = [i for i, w in enumerate(words) if w.isalpha() and not w.isupper()]
        if inflectable and rng.random() < 0.45:
            i = inflectable[0]
            words[i] = inflector.inflect(words[i], lang, rng, singular=True)
            text = " ".join(words)
    if has_digit(term) and rng.random() < 0.3:
        text = text.translate(str.maketrans("МХСРТАК", "MXCPTAK"))  # look-alike Latin letters
    if not slavic and text[:1].isupper() and text.isalpha() and rng.random() < 0.1:
        text += rng.choice(("'s", "s"))
    if slavic and term.kind in ("weapon", "code") and rng.random() < 0.25:
        text = f"«{text}»"
    before, after = CONTEXT.get((term.kind, "cyr" if slavic else "lat"), ((), ()))
    if rng.random() < 0.3 and (before or after):
        if before and (not after or rng.random() < 0.5):
            word = rng.choice(before)
            if slavic:
                word = inflector.inflect(word, lang, rng)
            return f"{word} {text}"
        return f"{text} {rng.choice(after)}"
    return text


def make_post(
    rng: random.Random,
    lang: str,
    lexicon: Lexicon,
    zipf: Zipf,
    inflector: Inflector,
) -> tuple[str, int]:
    """A post of ~60 words and how many tracked terms were put in it."""
    words = [
        rng.choice(lexicon.function)
        if rng.random() < 0.35
        else rng.choice(rng.choice(lexicon.content))
        for _ in range(rng.randint(45, 75))
    ]
    mentions = rng.choices([n for n, _ in TERMS_PER_POST], [w for _, w in TERMS_PER_POST])[0]
    for term in zipf.draw_distinct(rng, mentions):
        words.insert(rng.randrange(len(words) + 1), render_term(term, lang, rng, inflector))
    pieces: list[str] = []
    sentence_left = 0
    for word in words:
        if sentence_left == 0:
            if pieces:
                pieces[-1] += "."
            word = word[:1].upper() + word[1:]
            sentence_left = rng.randint(8, 16)
        elif rng.random() < 0.08:
            pieces[-1] += ","
        pieces.append(word)
        sentence_left -= 1
    text = " ".join(pieces) + "."
    if rng.random() < 0.1:
        text = f"@{rng.choice(CHANNELS)}: {text}"
    if rng.random() < 0.12:
        text += f" https://t.me/{rng.choice(CHANNELS)}/{rng.randint(1000, 99999)}"
    if rng.random() < 0.15:
        tags = [f"#{t.text.replace('-', '')}" for t in zipf.draw_distinct(rng, 1)]
        text += " " + " ".join([*tags, rng.choice(HASHTAGS)])
    return text, mentions


class PostMaker:
    """Generated news posts, each language in its share, with tracked terms Zipf-ranked by
    script (here, and in the benchmarks that store generated posts)."""

    def __init__(self, terms: list[Term], inflector: Inflector | None = None) -> None:
        self.inflector = inflector or Inflector()
        self.lexicons = build_lexicons(self.inflector)
        self.cyrillic = Zipf(
            [t for t in terms if t.script == "cyr" or t.text.isupper() or has_digit(t)]
        )
        self.latin = Zipf([t for t in terms if t.script == "lat"])

    def make(self, rng: random.Random) -> tuple[str, int]:
        """A post and how many tracked terms it mentions."""
        lang = rng.choices([n for n, _ in LANGUAGES], [w for _, w in LANGUAGES])[0]
        zipf = self.latin if lang == "en" else self.cyrillic
        return make_post(rng, lang, self.lexicons[lang], zipf, self.inflector)


def make_posts(
    rng: random.Random, terms: list[Term], inflector: Inflector
) -> tuple[list[str], float]:
    """POST_COUNT posts, and the average number of tracked terms put in each."""
    maker = PostMaker(terms, inflector)
    posts: list[str] = []
    mentions = 0
    for _ in range(POST_COUNT):
        post, count = maker.make(rng)
        posts.append(post)
        mentions += count
    return posts, mentions / len(posts)


# --- timing -------------------------------------------------------------------------------------


def timed(work: Callable[[], int]) -> tuple[float, int]:
    """Seconds `work` takes with the garbage collector paused, and what it returned."""
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter()
        result = work()
        return time.perf_counter() - start, result
    finally:
        gc.enable()


def index_rate(index: QueryIndex, posts: list[str]) -> tuple[float, float, float, float]:
    """Posts/s through `index.match_set`, and with the spans of every matched query too.

    `match_set` is the matching work: which distinct queries (and so which subscriptions) a
    post matches. The words to bold are worked out per matched query when an alert is built;
    the second figure includes them, so both costs are visible. Best of INDEX_PASSES each.
    Also returns subscription hits and distinct matched queries per post.
    """

    def run() -> int:
        return sum(len(index.match_set(post)) for post in posts)

    def run_with_spans() -> int:
        total = 0
        for post in posts:
            for hit in index.match_queries(post):
                hit.spans  # noqa: B018 - computing them is the point
                total += 1
        return total

    best = best_spans = float("inf")
    queries = 0
    for _ in range(INDEX_PASSES):
        seconds, queries = timed(run)
        best = min(best, seconds)
        seconds, _ = timed(run_with_spans)
        best_spans = min(best_spans, seconds)
    hits = sum(index.match_set(post).subscription_count() for post in posts)
    return len(posts) / best, len(posts) / best_spans, hits / len(posts), queries / len(posts)


def naive_rate(patterns: list[re.Pattern[str]], posts: list[str]) -> tuple[float, float, int]:
    """Posts per second of the regex loop on a sample sized to take ~BASELINE_SECONDS."""

    def run(sample: Iterable[str]) -> Callable[[], int]:
        return lambda: sum(1 for post in sample for p in patterns if p.search(post))

    per_post, _ = timed(run(posts[:1]))
    size = max(BASELINE_MIN_POSTS, min(len(posts), round(BASELINE_SECONDS / per_post)))
    step = len(posts) / size
    sample = [posts[int(i * step)] for i in range(size)]
    seconds, hits = timed(run(sample))
    return size / seconds, hits / size, size


def compile_naive(queries: list[GeneratedQuery]) -> list[re.Pattern[str]]:
    """One compiled pattern per subscription (compiled once per distinct pattern: setup only)."""
    compiled: dict[str, re.Pattern[str]] = {}
    for query in queries:
        if query.naive not in compiled:
            compiled[query.naive] = re.compile(query.naive, re.IGNORECASE)
    return [compiled[query.naive] for query in queries]


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


# --- main ---------------------------------------------------------------------------------------


def main() -> None:
    started = time.perf_counter()
    rng = random.Random(SEED)
    terms, partners = build_vocabulary(rng)
    zipf = Zipf(terms)
    queries = [make_query(rng, zipf, partners) for _ in range(max(COUNTS))]
    for text in {q.text for q in queries}:
        parse_query(text)  # every generated query must be valid
    inflector = Inflector()
    posts, mentions = make_posts(rng, terms, inflector)
    words = sum(len(post.split()) for post in posts) / len(posts)
    shapes = Counter(q.shape for q in queries)
    print(
        f"{len(terms):,} tracked terms; {len(posts):,} posts, {words:.0f} words and"
        f" {mentions:.1f} tracked terms each on average; query shapes at"
        f" {max(COUNTS):,}: "
        + ", ".join(f"{shape} {shapes[shape] / len(queries):.0%}" for shape, _ in SHAPES)
    )
    print(f"examples: {' | '.join(q.text for q in queries[:8])}")
    print()
    header = (
        f"{'subscriptions':>13} {'distinct':>9} {'build s':>8} {'index posts/s':>14}"
        f" {'+spans posts/s':>15} {'queries/post':>13}"
        f" {'naive posts/s':>14} {'ratio':>7} {'hits/post':>10} {'naive hits/post':>16}"
        f" {'naive sample':>13}"
    )
    print(header)
    now = datetime.now(UTC)
    rates: dict[int, tuple[float, float]] = {}
    for count in COUNTS:
        chosen = queries[:count]
        subscriptions = [
            Subscription(n, 1_000 + n // 3, q.text, now) for n, q in enumerate(chosen)
        ]
        expander = FormExpander()  # cold: the build expands every term as at service start
        gc.collect()
        start = time.perf_counter()
        index = QueryIndex(subscriptions, expander=expander)
        build = time.perf_counter() - start
        ours, with_spans, hits, matched = index_rate(index, posts)
        del index, expander
        patterns = compile_naive(chosen)
        naive, naive_hits, sample = naive_rate(patterns, posts)
        del patterns
        rates[count] = (ours, naive)
        distinct = len({q.text for q in chosen})
        print(
            f"{count:>13,} {distinct:>9,} {build:>8.2f} {ours:>14,.0f}"
            f" {with_spans:>15,.0f} {matched:>13,.1f} {naive:>14,.1f}"
            f" {ours / naive:>6,.0f}x {hits:>10,.1f} {naive_hits:>16,.1f} {sample:>13,}",
            flush=True,
        )
    print()
    ours_10k, naive_10k = rates[10_000]
    print(f"goal 10k >= 5,000 posts/s: {ours_10k:,.0f} -> {verdict(ours_10k >= 5_000)}")
    ratio = ours_10k / naive_10k
    print(f"goal 10k >= 100x baseline: {ratio:,.0f}x -> {verdict(ratio >= 100)}")
    third = rates[1_000][0] / 3
    ours_100k = rates[100_000][0]
    print(
        f"goal 100k >= 1/3 of 1k rate: {ours_100k:,.0f} vs {third:,.0f}"
        f" -> {verdict(ours_100k >= third)}"
    )
    print(f"(whole run {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
