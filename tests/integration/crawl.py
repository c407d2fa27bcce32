"""A link crawler for the test client: from a start page it follows every link and every
GET form the pages render (the form submitted with the values it shows), breadth first,
and records each answer. Bounded: at most `limit` requests, URLs deduplicated by their
path and the names of their query parameters, and at most `per_route` different paths of
one URL pattern (60 daily bills are one pattern walked a few times, not 60)."""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit

from django.urls import Resolver404, resolve

SKIPPED_PREFIXES = ("/static/", "/media/")


@dataclass(frozen=True)
class Link:
    url: str  # path and query, as requested
    source: str  # the page that rendered it ("" for the start)
    how: str  # "link", "form", "redirect", "start"


@dataclass
class Visit:
    link: Link
    status: int
    content_type: str = ""
    body: str = ""  # kept for refusals (4xx/5xx), and for pages with Crawl.keep_pages


class _Page(HTMLParser):
    """The <a href> targets and the GET forms (with the values they would send)."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.hrefs: list[str] = []
        self.forms: list[tuple[str, list[tuple[str, str]]]] = []
        self._form: tuple[str, list] | None = None
        self._select: tuple[str, list[str], list[str]] | None = None  # name, options, chosen

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "a" and a.get("href") is not None:
            self.hrefs.append(a["href"])
        elif tag == "form":
            method = (a.get("method") or "get").lower()
            self._form = (a.get("action") or "", []) if method == "get" else None
        elif self._form is None:
            return
        elif tag == "input" and a.get("name") and not a.get("disabled"):
            kind = (a.get("type") or "text").lower()
            if kind in ("submit", "button", "image", "reset", "file"):
                return
            if kind in ("checkbox", "radio") and "checked" not in a:
                return
            self._form[1].append((a["name"], a.get("value") or ("on" if kind == "checkbox"
                                                                  else "")))
        elif tag == "select" and a.get("name"):
            self._select = (a["name"], [], [])
        elif tag == "option" and self._select is not None:
            value = a.get("value", "")
            self._select[1].append(value)
            if "selected" in a:
                self._select[2].append(value)
        elif tag == "textarea" and a.get("name"):
            self._form[1].append((a["name"], ""))

    def handle_endtag(self, tag):
        if tag == "select" and self._select is not None and self._form is not None:
            name, options, chosen = self._select
            value = (chosen or options[:1] or [""])[0]
            self._form[1].append((name, value))
            self._select = None
        elif tag == "form" and self._form is not None:
            self.forms.append(self._form)
            self._form = None


def shape(url: str) -> tuple[str, tuple[str, ...]]:
    parts = urlsplit(url)
    return parts.path, tuple(sorted({k for k, _ in parse_qsl(parts.query, True)}))


def route_of(path: str) -> str:
    try:
        match = resolve(path)
    except Resolver404:
        return path
    return match.route or path


def internal(base: str, href: str) -> str | None:
    """`href` as a path and query on this site, or None (another site, an anchor, mail)."""
    href = href.strip()
    if not href or href.startswith(("#", "mailto:", "javascript:", "tel:", "data:")):
        return None
    absolute = urljoin("http://testserver" + base, href)
    parts = urlsplit(absolute)
    if parts.scheme not in ("http", "https") or parts.netloc != "testserver":
        return None
    if parts.path.startswith(SKIPPED_PREFIXES):
        return None
    return parts.path + (f"?{parts.query}" if parts.query else "")


@dataclass
class Crawl:
    client: object
    limit: int = 400
    per_route: int = 6
    visits: list[Visit] = field(default_factory=list)
    capped: int = 0  # links left unvisited by the bounds
    keep_pages: bool = False  # keep the HTML of the 200 pages too (the language checks)

    def run(self, *starts: str) -> Crawl:
        """Breadth first, links to a URL pattern not seen yet before the rest, so the
        bound cuts into repeats of a kind of page rather than into kinds of pages."""
        fresh: deque[Link] = deque(Link(url, "", "start") for url in starts)
        again: deque[Link] = deque()
        seen: set = set()
        routes_queued: set[str] = set()
        paths_of_route: dict[str, set[str]] = {}
        while fresh or again:
            link = (fresh or again).popleft()
            key = shape(link.url)
            if key in seen:
                continue
            path = key[0]
            route = route_of(path)
            paths = paths_of_route.setdefault(route, set())
            if path not in paths and len(paths) >= self.per_route:
                continue
            if len(self.visits) >= self.limit:
                self.capped += 1
                continue
            seen.add(key)
            paths.add(path)
            for found in self._visit(link):
                found_route = route_of(shape(found.url)[0])
                if found_route in routes_queued:
                    again.append(found)
                else:
                    routes_queued.add(found_route)
                    fresh.append(found)
        return self

    def _visit(self, link: Link) -> list[Link]:
        response = self.client.get(link.url)
        content_type = response.get("Content-Type", "")
        kept = response.status_code >= 400 or (
            self.keep_pages and response.status_code == 200
            and content_type.startswith("text/html"))
        body = (response.content.decode(errors="replace")
                if kept and not getattr(response, "streaming", False) else "")
        self.visits.append(Visit(link, response.status_code, content_type, body))
        if response.status_code in (301, 302, 303, 307, 308):
            target = internal(link.url, response["Location"])
            return [Link(target, link.url, "redirect")] if target else []
        if response.status_code != 200 or not content_type.startswith("text/html"):
            return []
        page = _Page()
        page.feed(response.content.decode())
        found = [Link(url, link.url, "link")
                 for url in (internal(link.url, href) for href in page.hrefs) if url]
        for action, fields in page.forms:
            target = internal(link.url, action or link.url)
            if target:
                base = target.split("?", 1)[0]
                query = urlencode(fields)
                found.append(Link(f"{base}?{query}" if query else base, link.url, "form"))
        return found

    def failures(self, allowed=lambda visit: False) -> list[str]:
        return [f"{v.status} {v.link.how} {v.link.url} (on {v.link.source or 'start'})"
                for v in self.visits if v.status >= 400 and not allowed(v)]
