"""Text written for the ear: what a text-to-speech call reads out must carry no link, no symbol read aloud as
"井号" or "斜杠", and numbers and terms in words a listener understands (`PM2.5` → 细颗粒物, `30%` → 百分之三十,
`2026年` → 二零二六年). The renderer offers `spoken` as a template filter for voice templates; publisher text
passes through it too, so a pasted link or an abbreviation never reaches the caller.
"""

from __future__ import annotations

import re

DIGITS = "零一二三四五六七八九"
_UNITS = ((100_000_000, "亿"), (10_000, "万"), (1000, "千"), (100, "百"), (10, "十"))
_URL = re.compile(r"(?:https?://|www\.)[^\s，。；、）)】]+", re.IGNORECASE)
# Terms a listener would not understand spelled out, longest first (PM2.5 before PM).
TERMS_ZH = (("PM2.5", "细颗粒物"), ("PM10", "可吸入颗粒物"), ("AQI", "空气质量指数"), ("O3", "臭氧"),
            ("NO2", "二氧化氮"), ("SO2", "二氧化硫"), ("℃", "摄氏度"), ("km/h", "公里每小时"), ("km", "公里"))
TERMS_EN = (("PM2.5", "fine particulate matter"), ("PM10", "coarse particulate matter"),
            ("AQI", "air quality index"), ("℃", " degrees Celsius"), ("km/h", " kilometres per hour"),
            ("%", " percent"))
_SILENT = re.compile(r"[#*_|<>\\^`~=@【】\[\]{}\"'“”‘’]")
_RANGE = re.compile(r"(?<=\d)\s*[-~～—]\s*(?=\d)")
_PERCENT = re.compile(r"(\d+(?:\.\d+)?)\s*[%％]")
_YEAR = re.compile(r"(\d{4})(?=年)")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
# Read digit by digit, 1 as 幺 (as Chinese read phone numbers): numbers shaped like phones, long digit runs, and
# numbers right after 电话 / 热线 / 拨打 (110, 12345).
_PHONE = re.compile(r"(?<![\d.])(?:0\d{2,3}[- ]?\d{7,8}|\d{5,})(?![\d.])")
_DIALLED = re.compile(r"(电话|热线|拨打|号码)([：:\s]*)(\d{3,4}(?:[、,，和或]\d{3,4})*)(?![\d.])")
_DIGIT_RUN = re.compile(r"\d+")
_MINUS = re.compile(r"(?<![0-9A-Za-z])[-−](?=\d)")


def integer_words(value: int) -> str:
    """A whole number in Chinese words as it is read aloud: 200 → 二百, 1005 → 一千零五, 12 → 十二."""
    if value == 0:
        return DIGITS[0]
    if value < 0:
        return "负" + integer_words(-value)
    words = _below_ten_thousand_groups(value)
    return words[1:] if words.startswith("一十") else words


def _below_ten_thousand_groups(value: int) -> str:
    out: list[str] = []
    zero = False  # a skipped place to be read as one 零
    for unit, name in _UNITS:
        part, value = divmod(value, unit)
        if part:
            if zero and out:
                out.append(DIGITS[0])
            out.append((_below_ten_thousand_groups(part) if part >= 10 else DIGITS[part]) + name)
            zero = False
        elif out:
            zero = True
    if value:
        if zero and out:
            out.append(DIGITS[0])
        out.append(DIGITS[value])
    return "".join(out)


def digit_words(text: str) -> str:
    """Digits read one by one as in a phone number: 12345 → 幺二三四五 (other characters dropped)."""
    return "".join("幺" if d == "1" else DIGITS[int(d)] for d in text if d.isdigit())


def number_words(text: str) -> str:
    """A number as written (`200`, `1.5`) in Chinese words: 二百, 一点五."""
    whole, _, fraction = text.partition(".")
    words = integer_words(int(whole))
    return words + ("点" + "".join(DIGITS[int(d)] for d in fraction) if fraction else "")


def spoken(text: object, locale: str = "zh-CN") -> str:
    """`text` fit to be read out in `locale`: links dropped, symbols silenced, terms and (in Chinese) numbers in
    words, whitespace collapsed."""
    value = _URL.sub("", str(text))
    if locale.lower().startswith("zh"):
        value = _spoken_zh(value)
    else:
        for term, words in TERMS_EN:
            value = value.replace(term, words)
        value = _RANGE.sub(" to ", value)
    value = _SILENT.sub("", value.replace("/", "、" if locale.lower().startswith("zh") else " or "))
    return " ".join(value.split())


def _spoken_zh(value: str) -> str:
    for term, words in TERMS_ZH:
        # "空气质量指数（AQI）": the abbreviation after its own words is dropped, not read twice.
        value = re.sub(rf"{re.escape(words)}\s*[（(]\s*{re.escape(term)}\s*[）)]", words, value)
        value = value.replace(term, words)
    value = _PHONE.sub(lambda m: digit_words(m.group(0)), value)
    value = _DIALLED.sub(lambda m: m.group(1) + m.group(2) + _DIGIT_RUN.sub(lambda d: digit_words(d.group(0)),
                                                                            m.group(3)), value)
    value = _MINUS.sub("负", value)
    value = _RANGE.sub("至", value)
    value = _PERCENT.sub(lambda m: "百分之" + number_words(m.group(1)), value)
    value = _YEAR.sub(lambda m: "".join(DIGITS[int(d)] for d in m.group(1)), value)
    return _NUMBER.sub(lambda m: number_words(m.group(0)), value)
