"""Folding near-duplicate posts, so that a digest or a batch of alerts shows each story once.

The same news reaches a subscriber many times: a channel reposts it, another forwards it,
three feeds and two X accounts carry it within hours. `fold` groups such posts into stories;
the caller shows each story's lead with "also in @a, @b, +3".

Text. `normalise` drops what reposts change without changing the story: case, `ё`, links,
@mentions, hashtag marks, emoji and other symbols, punctuation, line breaks, a leading
"Forwarded from …" header and trailing signatures ("Подписаться | @channel", "Source: Reuters",
a line that is only a link or a mention). The list of signatures is short on purpose: what it
misses costs a few shingles, which the threshold below tolerates.

Similarity. The words are cut into overlapping shingles of SHINGLE_WORDS (3) words. Two posts
telling the same story share most shingles; two different posts on one subject share the names
and the vocabulary but rarely three words in a row, so the Jaccard similarity of the shingle
sets separates them where single words would not (a repost with a sentence of commentary added
stays around 0.8; a different report on the same launch is below 0.05). Two-word shingles
let set phrases ("средней дальности", "боевое дежурство") join unrelated posts: on the test
table the closest distinct pair rises to 0.56, level with the hardest duplicate. Four or five
words widen the gap on that table, but each word edited in a short post then costs four or
five shingles: a 24-word flash with two words edited keeps 0.67 at three, 0.59 at four, 0.52
at five. A MinHash of NUM_PERM (128) values estimates the
Jaccard similarity as the share of equal values (standard error at most 0.045).

Candidates. Comparing signatures of all pairs would be wasted on posts that share nothing:
the first BANDS × ROWS values are cut into BANDS (40) bands of ROWS (3) values, and only posts
sharing a whole band are compared (locality-sensitive hashing). Posts of Jaccard s share a
band with probability 1 − (1 − s³)⁴⁰: 0.995 at s = 0.5, 0.93 at 0.4, 0.27 at 0.2. The curve's
midpoint, (1/40)^(1/3) ≈ 0.29, lies well below the confirmation threshold, so a duplicate is
almost never missed, while unrelated posts (s < 0.1) share a band in under 4% of pairs and
cost one comparison when they do. `fold` keeps the band keys of its stories' leads in one set:
a post sharing none is a new story after one look-up per band.

Threshold. A candidate is confirmed when its estimated Jaccard is at least THRESHOLD (0.5).
In the test table the duplicates estimate at 0.55 and above (the hardest: a 24-word flash with
18 words of commentary around it) and the distinct posts at 0.38 and below (the hardest: two
air-defence bulletins of one template, with another number and region); different reports on
the same subject stay under 0.15. From text alone, a short templated post whose only change is
one word (another region, the same number) is a repost with a word changed, and folds.

Short texts. A post with fewer than MIN_WORDS (3) words after normalisation — only a link, only
emoji, a one-word "Орешник" — has too few shingles for a similarity to mean anything: it folds
with nothing but another copy of itself (the same key).

Time. A post joins a story only if it was published within `window` of the story's lead — of
the lead, not of any member, so that a story cannot creep along a chain of reposts for days.
"""

from __future__ import annotations

import re
import unicodedata
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Generic, TypeVar

import numpy as np
from datasketch import MinHash
from numpy.typing import NDArray

SHINGLE_WORDS = 3
NUM_PERM = 128
BANDS = 40
ROWS = 3
THRESHOLD = 0.5
MIN_WORDS = 3
SEED = 20241121  # fixed, so that signatures are the same in every process and run
DEFAULT_WINDOW = timedelta(hours=12)
DEFAULT_CACHE_ENTRIES = 50_000  # about 2.3 KB each (measured): ~115 MB when full
SIGNATURE_MAX_WORDS = 10  # a longer last line is text, whatever word it starts with
_BAND_MASK = (1 << 30) - 1
_SCHEME = "affine32"  # datasketch's default since 2.0: uint32 values, collision-free permutations

T = TypeVar("T")

# Links and @mentions go before punctuation is stripped, or their parts would become words.
_LINKS_RE = re.compile(
    r"(?:https?://|www\.)\S+|\b(?:t|telegram)\.me/\S+|(?<![\w.])@\w+", re.IGNORECASE
)
# Last lines that sign a post rather than tell it: a call to subscribe, or a source named
# after a colon ("Источник: ТАСС", not "Источник в Минобороны сообщил…"). Matched on the
# lower-cased line without links and leading emoji.
_SIGNATURE_RE = re.compile(
    r"[\W_]*(?:(?:подписаться|подпишись|подпишитесь|подписывайся|подписывайтесь|підписатися"
    r"|підпишись|підпишіться|підписуйтесь|subscribe|join us|наш канал|via)\b"
    r"|(?:источник|джерело|source)\s*:)"
)
# The header a forwarded post is copied with.
_FORWARD_RE = re.compile(r"(?:forwarded from|переслано от|переслано из)\b")
# Characters below this are remembered once classified; rarer ones (CJK, emoji) are classified
# each time, so that a hostile post cannot grow the table to all of Unicode.
_TABLE_LIMIT = 0x3000


class _CharTable(dict[int, str]):
    """A `str.translate` table that classifies each character on first sight.

    Letters and digits stay (`ё` becomes `е`); marks and format characters inside a word (a
    stress mark, a soft hyphen, a variation selector, a zero-width joiner) vanish; everything
    else — punctuation, symbols, emoji (So, Sk, Cs, Co, Cn), spaces and controls — separates.
    """

    def __missing__(self, code: int) -> str:
        char = chr(code)
        category = unicodedata.category(char)
        if char == "ё":
            out = "е"
        elif category[0] in "LN":
            out = char
        elif category in ("Mn", "Me", "Cf") and char != "\u200b":
            out = ""
        else:
            out = " "
        if code < _TABLE_LIMIT:
            self[code] = out
        return out


_CHARS = _CharTable()


def _words(text: str) -> list[str]:
    """The words of `text` (see `normalise`), without a forward header or trailing signatures."""
    lines: list[tuple[str, list[str]]] = []  # (lower-cased line without links, its words)
    for line in unicodedata.normalize("NFKC", text).splitlines():
        plain = _LINKS_RE.sub(" ", line).casefold()
        words = plain.translate(_CHARS).split()
        if words:  # a line of only links, mentions, emoji or punctuation goes
            lines.append((plain, words))
    if lines and _FORWARD_RE.match(" ".join(lines[0][1])):
        del lines[0]
    while lines and len(lines[-1][1]) <= SIGNATURE_MAX_WORDS and _SIGNATURE_RE.match(lines[-1][0]):
        del lines[-1]
    return [word for _, words in lines for word in words]


def normalise(text: str) -> str:
    """The words of a post that tell its story, lower-cased and separated by single spaces."""
    return " ".join(_words(text))


def _shingles(words: list[str]) -> set[bytes]:
    if len(words) < SHINGLE_WORDS:
        return {word.encode() for word in words}
    return {
        " ".join(words[i : i + SHINGLE_WORDS]).encode()
        for i in range(len(words) - SHINGLE_WORDS + 1)
    }


@dataclass(frozen=True, slots=True, eq=False)
class Fingerprint:
    """A post's MinHash signature, its LSH band keys and its number of words."""

    bands: tuple[int, ...]
    hashvalues: NDArray[np.uint32]
    words: int

    @property
    def foldable(self) -> bool:
        """Whether the text is long enough to be compared with others at all."""
        return self.words >= MIN_WORDS


def similarity(a: Fingerprint, b: Fingerprint) -> float:
    """The estimated Jaccard similarity of two posts' shingle sets."""
    return int(np.count_nonzero(a.hashvalues == b.hashvalues)) / NUM_PERM


class Fingerprints:
    """Fingerprints by post key, computed once per post and kept for the latest `max_entries`.

    One post appears in thousands of digests. Making its fingerprint (~0.2 ms) costs more than
    folding a whole digest of cached ones (~0.04 ms for 20 posts).
    """

    def __init__(self, max_entries: int = DEFAULT_CACHE_ENTRIES) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be positive")
        self.max_entries = max_entries
        self._entries: OrderedDict[Hashable, Fingerprint] = OrderedDict()
        # Generating the permutations is the dearest part of a MinHash: do it once.
        self._permutations = MinHash(num_perm=NUM_PERM, seed=SEED, scheme=_SCHEME).permutations

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def entries(self) -> OrderedDict[Hashable, Fingerprint]:
        """The cache itself (for a caller that frees it a slice at a time)."""
        return self._entries

    def __contains__(self, key: Hashable) -> bool:
        return key in self._entries

    def get(self, key: Hashable, text: str) -> Fingerprint:
        """The fingerprint of the post `key`; `text` is hashed only when it is not cached."""
        found = self._entries.get(key)
        if found is not None:  # (kept in the order made: moving it costs more than it saves)
            return found
        made = self.make(text)
        self._entries[key] = made
        if len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
        return made

    def make(self, text: str) -> Fingerprint:
        """The fingerprint of `text`, not cached."""
        words = _words(text)
        minhash = MinHash(
            num_perm=NUM_PERM, seed=SEED, permutations=self._permutations, scheme=_SCHEME
        )
        minhash.update_batch(_shingles(words))
        hashvalues: NDArray[np.uint32] = minhash.hashvalues
        hashvalues.flags.writeable = False  # shared by every digest the post is in
        rows: list[list[int]] = hashvalues[: BANDS * ROWS].reshape(BANDS, ROWS).tolist()
        # Hashes of int tuples are not salted: band keys are the same in every process. Cut to
        # 30 bits, they are one-digit ints, quicker to hash and smaller; two bands of different
        # stories meeting by chance (odds 2⁻³⁰) cost one comparison, not a wrong fold.
        bands = tuple(hash((band, *values)) & _BAND_MASK for band, values in enumerate(rows))
        return Fingerprint(bands=bands, hashvalues=hashvalues, words=len(words))


@dataclass(frozen=True, slots=True)
class Story(Generic[T]):
    """Posts telling one story: the lead to show and the others it stands for."""

    lead: T
    others: tuple[T, ...] = ()

    @property
    def items(self) -> tuple[T, ...]:
        """The lead, then the others."""
        return (self.lead, *self.others)


def fold(
    items: Sequence[T],
    *,
    key: Callable[[T], Hashable],
    text: Callable[[T], str],
    when: Callable[[T], datetime],
    window: timedelta = DEFAULT_WINDOW,
    fingerprints: Fingerprints | None = None,
) -> list[Story[T]]:
    """Group `items` into stories of near-duplicate posts, in the order given.

    Each item joins the first story whose lead it duplicates — a shared band, an estimated
    Jaccard of at least THRESHOLD and a `when` within `window` of the lead's, before or after —
    or else leads a new story; an item whose key was seen before joins that item's story,
    whatever its text and time. Leads and others keep the input order, so a caller sorting by
    relevance gets the most relevant post of each story as its lead.
    """
    if len(items) < 2:  # nothing to fold with (every single alert the outbox sends)
        return [Story(item) for item in items]
    cache = fingerprints if fingerprints is not None else Fingerprints()
    leads: list[T] = []
    lead_prints: list[Fingerprint] = []
    others: list[list[T]] = []
    story_of_key: dict[Hashable, int] = {}
    # The band keys of every lead that can fold. Most items share none with it: one set look-up
    # per band settles them, and only the rest are compared lead by lead.
    lead_bands: set[int] = set()
    for item in items:
        item_key = key(item)
        story = story_of_key.get(item_key)
        if story is not None:
            others[story].append(item)
            continue
        fingerprint = cache.get(item_key, text(item))
        if fingerprint.foldable and not lead_bands.isdisjoint(fingerprint.bands):
            story = _first_match(item, fingerprint, leads, lead_prints, lead_bands, when, window)
        if story is not None:
            others[story].append(item)
        else:
            story = len(leads)
            leads.append(item)
            lead_prints.append(fingerprint)
            others.append([])
            if fingerprint.foldable:
                lead_bands.update(fingerprint.bands)
        story_of_key[item_key] = story
    return [Story(lead, tuple(members)) for lead, members in zip(leads, others, strict=True)]


def _first_match(
    item: T,
    fingerprint: Fingerprint,
    leads: list[T],
    lead_prints: list[Fingerprint],
    lead_bands: set[int],
    when: Callable[[T], datetime],
    window: timedelta,
) -> int | None:
    """The first story whose lead `item` duplicates, if any."""
    shared = lead_bands.intersection(fingerprint.bands)
    moment = when(item)
    for story, lead_print in enumerate(lead_prints):
        if (
            lead_print.foldable
            and not shared.isdisjoint(lead_print.bands)
            and similarity(fingerprint, lead_print) >= THRESHOLD
            and abs(when(leads[story]) - moment) <= window
        ):
            return story
    return None
