#!/usr/bin/env python3
"""Date normalization: a date written the way people write it -> ISO 8601 "YYYY-MM-DD".

The task behind the bundled model of examples/dates (tools/train_dates.py trains it). Deterministic:
generate(n, seed) draws everything from its own random.Random(seed), so the same (n, seed) gives
the same pairs on every machine and Python version >= 3.2 (no global random state, no hash order).

Every source has exactly one correct target. The conventions that make this so:
  - "/" between numbers: US order, month first ("03/05/2024" = 5 March), unless the year comes
    first ("2024/03/05"); "." between numbers: European order, day first ("5.3.2024" = 5 March);
    "-" between numbers: year first ("2024-03-05"); 8 bare digits: YYYYMMDD.
  - two-digit years ("March 5, 24", "3/5/24", "Mar 5 '24") mean 1950-2049 (pivot 50) and are only
    drawn for dates in that range; four-digit years span 1900-2099.
  - a weekday, when written, is the true weekday of the date.
Surface noise: lower / UPPER / Title / as-is case, doubled spaces, a leading or trailing space.
Sources are at most MAX_SOURCE_LENGTH characters, targets exactly 10.

    python3 tools/dates_task.py 20          # prints 20 pairs (seed 0)
"""
import datetime
import random
import sys

MAX_SOURCE_LENGTH = 48
TARGET_LENGTH = 10
FIRST_YEAR, LAST_YEAR = 1900, 2099
PIVOT_FIRST, PIVOT_LAST = 1950, 2049  # the years a two-digit year can denote

MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]
MONTH_ABBREVIATIONS = [m[:3] for m in MONTHS]
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]  # date.weekday() order
DAY_WORDS = ["first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth",
             "eleventh", "twelfth", "thirteenth", "fourteenth", "fifteenth", "sixteenth", "seventeenth",
             "eighteenth", "nineteenth", "twentieth", "twenty-first", "twenty-second", "twenty-third",
             "twenty-fourth", "twenty-fifth", "twenty-sixth", "twenty-seventh", "twenty-eighth", "twenty-ninth",
             "thirtieth", "thirty-first"]


def _charset():
    """Every character a source or target can contain, sorted (the model's character vocabulary)."""
    words = MONTHS + ["Sept"] + WEEKDAYS + DAY_WORDS + ["the", "of", "st", "nd", "rd", "th"]
    chars = set("0123456789 ,./-'")
    for w in words:
        chars |= set(w) | set(w.lower()) | set(w.upper()) | set(w.title())
    return sorted(chars)


CHARSET = _charset()


def ordinal_suffix(day):
    if day in (11, 12, 13):
        return "th"
    return {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")


def _month_name(rng, month):
    """Full name, three-letter abbreviation, or (September only, rarely) "Sept"."""
    if month == 9 and rng.random() < 0.15:
        return "Sept"
    return MONTHS[month - 1] if rng.random() < 0.5 else MONTH_ABBREVIATIONS[month - 1]


def _weekday_name(rng, date):
    name = WEEKDAYS[date.weekday()]
    return name if rng.random() < 0.6 else name[:3]


def _num(rng, value):
    """1..31 written bare or zero-padded to two digits."""
    return f"{value:02d}" if rng.random() < 0.5 else str(value)


def _two_digit_year(year):
    assert PIVOT_FIRST <= year <= PIVOT_LAST
    return f"{year % 100:02d}"


# Each format: (name, needs a year in the pivot range, function(rng, date) -> str).
def _formats():
    def full_month(r, d):
        return MONTHS[d.month - 1]

    def day_ord(r, d):
        return f"{d.day}{ordinal_suffix(d.day)}"

    return [
        ("weekday_month_ord_year", False, lambda r, d: f"{_weekday_name(r, d)}, {full_month(r, d)} {day_ord(r, d)}"
                                                      f"{r.choice([' ', ', '])}{d.year}"),
        ("day_mon_year", False, lambda r, d: f"{d.day} {_month_name(r, d.month)} {d.year}"),
        ("us_slash", False, lambda r, d: f"{_num(r, d.month)}/{_num(r, d.day)}/{d.year}"),
        ("us_slash_yy", True, lambda r, d: f"{_num(r, d.month)}/{_num(r, d.day)}/{_two_digit_year(d.year)}"),
        ("eu_dot", False, lambda r, d: f"{_num(r, d.day)}.{_num(r, d.month)}.{d.year}"),
        ("eu_dot_yy", True, lambda r, d: f"{_num(r, d.day)}.{_num(r, d.month)}.{_two_digit_year(d.year)}"),
        ("month_day_yy", True, lambda r, d: f"{_month_name(r, d.month)} {d.day}, {_two_digit_year(d.year)}"),
        ("month_day_apostrophe_yy", True, lambda r, d: f"{_month_name(r, d.month)} {d.day} '{_two_digit_year(d.year)}"),
        ("iso", False, lambda r, d: f"{d.year}-{d.month:02d}-{d.day:02d}"),
        ("iso_loose", False, lambda r, d: f"{d.year}-{d.month}-{d.day}"),
        ("year_slash", False, lambda r, d: f"{d.year}/{d.month:02d}/{d.day:02d}"),
        ("compact", False, lambda r, d: f"{d.year}{d.month:02d}{d.day:02d}"),
        ("the_ord_of_month", False, lambda r, d: f"the {day_ord(r, d)} of {full_month(r, d)}, {d.year}"),
        ("the_words_of_month", False, lambda r, d: f"the {DAY_WORDS[d.day - 1]} of {full_month(r, d)}"
                                                  f"{r.choice([' ', ', '])}{d.year}"),
        ("month_day_year", False, lambda r, d: f"{_month_name(r, d.month)} {d.day}{r.choice([', ', ' '])}{d.year}"),
        ("mon_dot_day_year", False, lambda r, d: f"{MONTH_ABBREVIATIONS[d.month - 1]}. {d.day}, {d.year}"),
        ("month_ord_year", False, lambda r, d: f"{full_month(r, d)} {day_ord(r, d)}, {d.year}"),
        ("ord_month_year", False, lambda r, d: f"{day_ord(r, d)} {_month_name(r, d.month)} {d.year}"),
        ("day_month_year", False, lambda r, d: f"{d.day} {full_month(r, d)}{r.choice([' ', ', '])}{d.year}"),
        ("weekday_day_mon_year", False, lambda r, d: f"{_weekday_name(r, d)} {d.day} {_month_name(r, d.month)}"
                                                    f" {d.year}"),
        ("weekday_ord_month_year", False, lambda r, d: f"{_weekday_name(r, d)}, {day_ord(r, d)} {full_month(r, d)}"
                                                      f" {d.year}"),
        ("dd_mon_yyyy", False, lambda r, d: f"{d.day:02d}-{MONTH_ABBREVIATIONS[d.month - 1]}-{d.year}"),
        ("weekday_the_words", False, lambda r, d: f"{_weekday_name(r, d)}, the {DAY_WORDS[d.day - 1]} of"
                                                 f" {full_month(r, d)} {d.year}"),
    ]


FORMATS = _formats()
FORMAT_NAMES = [name for name, _, _ in FORMATS]


def _add_noise(rng, text):
    """Case changes and extra spaces; the meaning is untouched."""
    c = rng.random()
    if c < 0.15:
        text = text.lower()
    elif c < 0.25:
        text = text.upper()
    elif c < 0.30:
        text = text.title()
    if " " in text and rng.random() < 0.15:
        parts = text.split(" ")
        gap = rng.randrange(len(parts) - 1)
        text = " ".join(parts[:gap + 1]) + "  " + " ".join(parts[gap + 1:])
    s = rng.random()
    if s < 0.04:
        text = " " + text
    elif s < 0.08:
        text = text + " "
    return text


def random_date(rng):
    first = datetime.date(FIRST_YEAR, 1, 1).toordinal()
    last = datetime.date(LAST_YEAR, 12, 31).toordinal()
    return datetime.date.fromordinal(rng.randint(first, last))


def sample(rng):
    """One (source, target) pair drawn from rng."""
    while True:
        date = random_date(rng)
        pivot = PIVOT_FIRST <= date.year <= PIVOT_LAST
        name, needs_pivot, render = FORMATS[rng.randrange(len(FORMATS))]
        if needs_pivot and not pivot:
            continue
        src = _add_noise(rng, render(rng, date))
        if len(src) <= MAX_SOURCE_LENGTH:
            return src, date.isoformat()


def generate(n, seed):
    """n (source, target) pairs; the same (n, seed) gives the same list, and generate(m, seed) for
    m < n is its prefix."""
    rng = random.Random(seed)
    return [sample(rng) for _ in range(n)]


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    for src, tgt in generate(n, seed):
        print(f"{src!r:52} {tgt}")
