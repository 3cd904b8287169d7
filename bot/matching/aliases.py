"""Names our users track that no spelling rule connects (`INF` = `РСМД`, `9M729` = `SSC-8`).

Each group lists spellings of one thing; a query term equal to any of them (after folding)
also looks for the others, each in all its forms. A spelling of several words is a phrase
whose words may take any form (`ракет средней и меньшей дальности`). An acronym listed here
takes its other-script spellings from its group only (`ПРО` is `ABM`, never `PRO`); other
acronyms are transliterated (`НАТО` = `NATO`). Keep it small and about arms control.
"""

from __future__ import annotations

ALIAS_GROUPS: tuple[tuple[str, ...], ...] = (
    ("Oreshnik", "Орешник"),
    ("Iskander", "Искандер"),
    ("Iskander-M", "Искандер-М", "SS-26", "9К720"),
    ("Kalibr", "Калибр", "SS-N-27"),
    ("Kinzhal", "Kinjal", "Кинжал", "Кинджал", "Kh-47M2", "Х-47М2"),
    ("Zircon", "Tsirkon", "Циркон", "3М22"),
    ("Poseidon", "Посейдон", "Status-6", "Статус-6"),
    ("Burevestnik", "Буревестник", "Skyfall", "9М730"),
    ("Sarmat", "Сармат", "RS-28", "РС-28"),
    ("Avangard", "Авангард"),
    ("Yars", "Ярс", "RS-24", "РС-24"),
    ("Bulava", "Булава"),
    ("Rubezh", "Рубеж", "RS-26", "РС-26"),
    ("9M729", "SSC-8"),
    (
        "INF",
        "РСМД",
        "ДРСМД",
        "ракеты средней и меньшей дальности",
        "ракети середньої та меншої дальності",
        "intermediate-range nuclear forces",
    ),
    (
        "New START",
        "СНВ-3",
        "СНВ",
        "ДСНВ",
        "СНВ-III",
        "Договор о стратегических наступательных вооружениях",
    ),
    ("ПРО", "ABM", "BMD", "противоракетная оборона", "missile defence", "missile defense"),
    ("МБР", "ICBM"),
    ("БРСД", "IRBM"),
    ("ДНЯО", "NPT", "Договор о нераспространении ядерного оружия"),
    ("ДВЗЯИ", "CTBT", "Договор о всеобъемлющем запрещении ядерных испытаний"),
    ("МАГАТЭ", "МАГАТЕ", "IAEA"),
    ("NATO", "Nato", "НАТО"),
    ("Лукашенко", "Lukashenka", "Lukashenko"),
    ("ВСУ", "ЗСУ", "AFU"),
    ("ГУР", "HUR"),
    ("ОДКБ", "CSTO"),
    ("ОБСЕ", "OSCE"),
    ("Kh-101", "Х-101"),
    ("Tu-95", "Ту-95"),
    ("Tu-160", "Ту-160"),
)
