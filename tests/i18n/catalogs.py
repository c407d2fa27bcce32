"""The Chinese catalogs as the language tests read them (QUALITY "Languages"): the messages
the code, templates and scripts mark (extracted by makemessages, as `make messages` does),
the committed .po and .mo files, the placeholders of a message, and the English phrases a
page in Chinese must not show."""
from __future__ import annotations

import os
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import polib
import pytest
from django.conf import settings
from django.core.management import call_command
from django.test import override_settings

LOCALE = "zh_Hans"
DOMAINS = ("django", "djangojs")
LOCALE_DIR = Path(settings.BASE_DIR) / "locale" / LOCALE / "LC_MESSAGES"
# What `make messages` leaves out (the Makefile's MESSAGES_IGNORE): tests, benchmarks,
# documents, deploy scripts, collected and vendored static files.
IGNORE = ["tests/*", "bench/*", "docs/*", "deploy/*", "staticfiles/*", "static/vendor/*",
          "var/*", "tmp/*"]


def po_path(domain: str) -> Path:
    return LOCALE_DIR / f"{domain}.po"


def mo_path(domain: str) -> Path:
    return LOCALE_DIR / f"{domain}.mo"


def key(entry) -> tuple[str | None, str]:
    return entry.msgctxt or None, entry.msgid


def require_gettext() -> None:
    """makemessages runs GNU xgettext: skip without it (CI, where `make test` installs it
    through `make i18n-deps`, fails instead)."""
    if shutil.which("xgettext") and shutil.which("msguniq"):
        return
    if os.environ.get("CI"):
        pytest.fail("CI must run the catalog tests, but GNU gettext (xgettext) is missing")
    pytest.skip("GNU gettext is not installed: `make i18n-deps` (as root) installs it")


def extract(domain: str, into: Path) -> polib.POFile:
    """Every message the project marks in `domain`, as makemessages finds them today.

    makemessages writes into the locale folder nearest each source file, which for the
    project's files is the committed locale/: it runs on a copy of the sources under `into`
    instead, so the committed catalog is never touched."""
    require_gettext()
    sources = into / "src"
    shutil.copytree(settings.BASE_DIR, sources, ignore=shutil.ignore_patterns(
        ".*", "__pycache__", "locale", "tests", "bench", "docs", "deploy", "staticfiles",
        "vendor", "var", "tmp", "*.sqlite3*", "*.png", "*.mo", "*.po"))
    here = os.getcwd()
    os.chdir(sources)
    try:
        with override_settings(LOCALE_PATHS=[str(sources / "locale")]):
            call_command("makemessages", locale=[LOCALE], domain=domain, ignore_patterns=IGNORE,
                         verbosity=0, add_location="never")
    finally:
        os.chdir(here)
    return polib.pofile(str(sources / "locale" / LOCALE / "LC_MESSAGES" / f"{domain}.po"))


# %(name)s and %s style (python-format, also the scripts' interpolate()), and {name}
# (str.format). "%%" is a literal percent sign in both templates and Python.
_PERCENT = re.compile(r"%(?:\((\w+)\))?[#0\- +]*\d*(?:\.\d+)?[sdifrx]")
_BRACES = re.compile(r"(?<!\{)\{(\w*)\}(?!\})")


def placeholders(text: str) -> list[str]:
    text = text.replace("%%", "")
    found = [f"%({name})" if name else "%" for name in _PERCENT.findall(text)]
    found += [f"{{{name}}}" for name in _BRACES.findall(text)]
    return sorted(found)


def problems_of(entry: polib.POEntry) -> list[str]:
    """Why the catalog's `entry` is not a usable Chinese message: untranslated, fuzzy, or
    with placeholders other than its English's."""
    name = f"{entry.msgctxt + ' | ' if entry.msgctxt else ''}{entry.msgid!r}"
    if "fuzzy" in entry.flags:
        return [f"fuzzy: {name}"]
    translations = (list(entry.msgstr_plural.values()) if entry.msgid_plural
                    else [entry.msgstr])
    if not translations or not all(t.strip() for t in translations):
        return [f"untranslated: {name}"]
    problems = []
    for text in translations:
        english = entry.msgid_plural if entry.msgid_plural else entry.msgid
        expected = placeholders(english)
        # A singular English form may leave the count out ("one coupon"); its placeholders
        # then come from the plural, which every Chinese form covers (nplurals=1).
        if entry.msgid_plural:
            expected = sorted(set(placeholders(entry.msgid)) | set(expected))
        if sorted(set(placeholders(text))) != sorted(set(expected)):
            problems.append(f"placeholders {placeholders(text)} ≠ {expected}: {name} → {text!r}")
    return problems


def messages_of(catalog) -> dict[tuple[str | None, str], tuple[str, ...]]:
    """(context, English) → the Chinese forms, of the translated, non-fuzzy entries: what a
    compiled catalog holds (msgfmt leaves the others out)."""
    found = {}
    for entry in catalog:
        if entry.obsolete or "fuzzy" in entry.flags or not entry.msgid:
            continue
        forms = (tuple(entry.msgstr_plural[n] for n in sorted(entry.msgstr_plural))
                 if entry.msgid_plural else (entry.msgstr,))
        if all(forms):
            found[key(entry)] = forms
    return found


# ---------------------------------------------------------------------------------------
# English left on a page


_WORD = re.compile(r"[A-Za-z][A-Za-z'’-]*")
_SPLIT = re.compile(r"%(?:\(\w+\))?[sd]|%%|<[^>]+>|&\w+;|[:;,.()“”\"→←…·—?!*\[\]]")


def english_phrases() -> set[str]:
    """The English of the catalogs' messages as pieces a page could show: each message cut
    at its placeholders, markup and punctuation, keeping the pieces of two words or more
    (one word — "Total", "Status" — is too often a name or a code to tell)."""
    phrases = set()
    for domain in DOMAINS:
        for entry in polib.pofile(str(po_path(domain))):
            if entry.obsolete:
                continue
            for english in filter(None, (entry.msgid, entry.msgid_plural)):
                for piece in _SPLIT.split(english):
                    words = _WORD.findall(piece)
                    if len(words) >= 2:
                        phrases.add(" ".join(words))
    return phrases


class _Visible(HTMLParser):
    """The text a person reads: text nodes outside scripts, styles and code, and the
    labels of buttons, placeholders and titles."""

    SKIPPED = {"script", "style", "code", "pre", "noscript"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag in self.SKIPPED:
            self._skipping.append(tag)
        a = dict(attrs)
        if tag == "input" and (a.get("type") or "").lower() in ("submit", "button"):
            self.parts.append(a.get("value") or "")
        for name in ("placeholder", "title", "aria-label", "data-confirm"):
            if a.get(name):
                self.parts.append(a[name])

    def handle_endtag(self, tag):
        if self._skipping and self._skipping[-1] == tag:
            self._skipping.pop()

    def handle_data(self, data):
        if not self._skipping:
            self.parts.append(data)


def visible_text(html: str) -> str:
    parser = _Visible()
    parser.feed(html)
    return " ".join(" ".join(parser.parts).split())


class EnglishCheck:
    """Finds the catalogs' English phrases in a page's visible text, as whole words, its
    data (names, codes, reasons: `data`) taken out first."""

    def __init__(self, phrases: set[str], data: set[str]):
        ordered = sorted(phrases, key=len, reverse=True)
        self.pattern = re.compile(
            r"(?<![A-Za-z])(?:" + "|".join(re.escape(p) for p in ordered) + r")(?![A-Za-z])")
        self.data = sorted((d for d in data if d), key=len, reverse=True)

    def left(self, html: str) -> list[str]:
        text = visible_text(html)
        for value in self.data:
            text = text.replace(value, " ")
        words = " ".join(_WORD.findall(text))
        return sorted(set(self.pattern.findall(words)))
