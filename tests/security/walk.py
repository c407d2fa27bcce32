"""Walking the URLconf: every pattern, found by the walker itself, with its parameters filled
from the world by what they name.

`endpoints()` discovers every URL pattern (through includes, the admin's included). For
each parameter of a pattern `param_kind()` says what it names; a parameter it does not know
raises `Unfillable`, so a new kind of URL parameter fails the tests until someone decides
what another tenant's value for it is. Admin URLs need no entry: their object ids are of the
ModelAdmin's model, and `MODEL_SCOPE` says whose rows of that model are — a model missing
there fails the same way.
"""
from __future__ import annotations

import io
import re
from dataclasses import dataclass
from datetime import date

from django.contrib import admin
from django.contrib.contenttypes.models import ContentType
from django.db.models import Q
from django.urls import URLPattern, URLResolver, get_resolver, resolve
from django.urls.exceptions import Resolver404

from accounts.models import Partner, PlatformBudget, SubAccount
from coupons.models import Coupon, CouponTemplate, IssuanceRequest

# ---------------------------------------------------------------------------------------
# Discovery


@dataclass(frozen=True)
class Endpoint:
    route: str  # the full pattern, prefixes joined: a stable id for the test
    name: str | None  # namespaced URL name
    params: tuple[str, ...]
    callback: object
    model_admin: admin.ModelAdmin | None

    @property
    def key(self) -> str:
        return self.name or self.route

    @property
    def is_admin(self) -> bool:
        return self.route.startswith("admin/")

    @property
    def view_class(self):
        return getattr(self.callback, "view_class", None)

    @property
    def model(self):
        return self.model_admin.model if self.model_admin else None

    @property
    def label(self) -> str | None:
        return self.model._meta.label_lower if self.model is not None else None


_PARAM = re.compile(r"<(?:(?P<conv>\w+):)?(?P<name>\w+)>|\(\?P<(?P<rname>\w+)>")


def _params(route: str) -> tuple[str, ...]:
    return tuple(m.group("name") or m.group("rname") for m in _PARAM.finditer(route))


def _model_admin_of(callback) -> admin.ModelAdmin | None:
    """The ModelAdmin behind an admin view: Django's own views carry it as `model_admin`;
    custom views wrapped by `admin_site.admin_view` are bound methods of it."""
    seen = 0
    fn = callback
    while fn is not None and seen < 10:
        found = getattr(fn, "model_admin", None)
        if isinstance(found, admin.ModelAdmin):
            return found
        owner = getattr(fn, "__self__", None)
        if isinstance(owner, admin.ModelAdmin):
            return owner
        fn = getattr(fn, "__wrapped__", None)
        seen += 1
    return None


def _walk(patterns, prefix: str = "", namespace: str | None = None):
    for entry in patterns:
        if isinstance(entry, URLResolver):
            ns = namespace
            if entry.namespace:
                ns = f"{namespace}:{entry.namespace}" if namespace else entry.namespace
            yield from _walk(entry.url_patterns, prefix + str(entry.pattern), ns)
        elif isinstance(entry, URLPattern):
            route = prefix + str(entry.pattern)
            name = None
            if entry.name:
                name = f"{namespace}:{entry.name}" if namespace else entry.name
            yield Endpoint(route=route, name=name, params=_params(route),
                           callback=entry.callback, model_admin=_model_admin_of(entry.callback))
        else:  # pragma: no cover - Django has no third kind
            raise TypeError(f"unknown URLconf entry {entry!r}")


# The partner API answers bearer keys, not sessions: tests/api/test_schema_fuzz.py walks
# every one of its operations with two partners' keys instead.
API_PREFIX = "api/"


def endpoints() -> list[Endpoint]:
    return [e for e in _walk(get_resolver().url_patterns)
            if not e.route.startswith(API_PREFIX) and e.route != "^api/"]


def endpoint_id(endpoint: Endpoint, endpoints_: list[Endpoint]) -> str:
    """The route, told apart from an earlier pattern with the same route by its name."""
    same = [e for e in endpoints_ if e.route == endpoint.route]
    if len(same) == 1:
        return endpoint.route
    return f"{endpoint.route}[{endpoint.name or same.index(endpoint)}]"


def build_url(endpoint: Endpoint, values: dict[str, str]) -> str:
    """The path of `endpoint` with `values` put in, checked to resolve back to it."""

    def route_sub(m):
        name = m.group("name")
        return str(values[name])

    route = endpoint.route
    # Regex parts (the admin's app index and catch-all): named groups, then anchors.
    out = []
    i = 0
    while i < len(route):
        if route.startswith("(?P<", i):
            end_name = route.index(">", i)
            name = route[i + 4:end_name]
            depth, j = 1, end_name + 1
            while depth:
                depth += {"(": 1, ")": -1}.get(route[j], 0)
                j += 1
            out.append(str(values[name]))
            i = j
        else:
            out.append(route[i])
            i += 1
    route = "".join(out).replace("^", "").replace("$", "")
    path = "/" + re.sub(r"<(?:(?P<conv>\w+):)?(?P<name>\w+)>", route_sub, route)
    try:
        match = resolve(path.split("?")[0])
    except Resolver404 as exc:  # pragma: no cover - a filler bug, not an app bug
        raise AssertionError(f"{path} built for {endpoint.route} does not resolve") from exc
    if match.func is not endpoint.callback:
        raise Shadowed(f"{endpoint.route} is shadowed by {match.route} (walked itself)",
                       by=match.func)
    return path


class Shadowed(Exception):
    """An earlier pattern answers this one's URLs: it is unreachable, the other is walked."""

    def __init__(self, message: str, *, by: object):
        super().__init__(message)
        self.by = by


def assert_shadower_walked(exc: Shadowed, endpoints_: list[Endpoint]) -> None:
    """A shadowed URL is nobody's door: its test passes once the pattern that answers its
    URLs is itself among the walked endpoints (so what a user reaches there is checked)."""
    assert any(e.callback is exc.by for e in endpoints_), f"{exc}, but that view is not walked"


# ---------------------------------------------------------------------------------------
# What parameters name, and whose rows are whose


class Unfillable(AssertionError):
    """A URL parameter the walker does not know: decide what a foreign value for it is."""


# Parameters of the app's own URLs: (URL name, parameter) → what it names.
APP_PARAMS = {
    ("coupons:template_detail", "pk"): "coupons.coupontemplate",
    ("coupons:template_disable", "pk"): "coupons.coupontemplate",
    ("coupons:issue", "pk"): "coupons.coupontemplate",
    ("coupons:issue_selection", "pk"): "coupons.coupontemplate",
    ("coupon_detail", "pk"): "coupons.coupon",
    ("coupon_void", "pk"): "coupons.coupon",
    ("approvals:detail", "pk"): "coupons.issuancerequest",
    ("approvals:progress", "pk"): "coupons.issuancerequest",
    ("approvals:cancel", "pk"): "coupons.issuancerequest",
    ("approvals:retry", "pk"): "coupons.issuancerequest",
    ("approvals:withdraw", "pk"): "coupons.issuancerequest",
    ("api_key_revoke", "pk"): "api.apikey",
    ("webhook_detail", "pk"): "api.webhookendpoint",
    ("webhook_disable", "pk"): "api.webhookendpoint",
    ("webhook_redeliver", "pk"): "api.webhookdelivery",
    ("billing:daily_bill", "day"): "day",
    ("billing:monthly_bill", "month"): "month",
    # The admin site's own URLs (not a ModelAdmin's).
    ("admin:view_on_site", "content_type_id"): "content_type",
    ("admin:view_on_site", "object_id"): "content_object",
    ("admin_view_on_site", "content_type_id"): "content_type",
    ("admin_view_on_site", "object_id"): "content_object",
    ("admin:app_list", "app_label"): "app_label",
    ("admin/(?P<url>.*)$", "url"): "admin_path",
}

# Which request of a URL's kind is the one worth trying: the status its action acts on.
PREFERRED_STATUS = {
    "approvals:cancel": "pending",
    "approvals:retry": "failed",
    "approvals:withdraw": "failed",
    "approve": "pending",
    "reject": "pending",
}

GLOBAL = "global"  # platform rows: the superuser's alone
USERS = "users"

# Model → (lookup to its Partner, lookup to its SubAccount or None). Rows of a partner
# belong to that partner's users and BD; rows of a sub-account also to its users.
MODEL_SCOPE = {
    "accounts.partner": ("", None),
    "accounts.subaccount": ("partner", ""),
    "accounts.platformbudget": ("partner", None),
    "accounts.user": USERS,
    "accounts.product": GLOBAL,
    "auth.group": GLOBAL,
    "billing.usageimport": GLOBAL,
    "coupons.coupontemplate": ("partner", None),
    "coupons.issuancerequest": ("partner", None),
    "approvals.pendingrequest": ("partner", None),
    "approvals.approval": ("request__partner", None),
    "coupons.coupon": ("partner", "sub_account"),
    "billing.deduction": ("partner", "sub_account"),
    "billing.dailybill": ("sub_account__partner", "sub_account"),
    "billing.monthlybill": ("sub_account__partner", "sub_account"),
    "audit.auditlog": ("partner", None),
    "api.apikey": ("partner", None),
    "api.webhookendpoint": ("partner", None),
    "api.webhookdelivery": ("endpoint__partner", None),
}


def param_kind(endpoint: Endpoint, param: str) -> str:
    kind = APP_PARAMS.get((endpoint.key, param))
    if kind:
        return kind
    if endpoint.model_admin is not None and param in ("object_id", "pk", "id"):
        label = endpoint.label
        if label not in MODEL_SCOPE:
            raise Unfillable(
                f"{endpoint.route}: the admin shows {label}, which MODEL_SCOPE does not know; "
                "say whose rows of it are whose",
            )
        return label
    raise Unfillable(
        f"{endpoint.route}: the walker does not know what <{param}> names; add it to "
        "APP_PARAMS with what another tenant's value for it is",
    )


def model_for(label: str):
    from django.apps import apps

    app_label, model_name = label.split(".")
    return apps.get_model(app_label, model_name)


# ---------------------------------------------------------------------------------------
# Picking rows: foreign (outside the role's scope) or own


def _owner_filter(label: str, partners, sub_account_id=None) -> Q:
    spec = MODEL_SCOPE[label]
    partner_path, account_path = spec
    key = f"{partner_path}__in" if partner_path else "pk__in"
    q = Q(**{key: [p.pk for p in partners]})
    if sub_account_id is not None and account_path is not None:
        q &= Q(**{account_path or "pk": sub_account_id})
    return q


def _status_filter(label: str, endpoint: Endpoint) -> dict:
    if label not in ("coupons.issuancerequest", "approvals.pendingrequest"):
        if label == "coupons.coupon" and endpoint.key == "coupon_void":
            return {"status": Coupon.Status.AVAILABLE}
        if label == "coupons.coupontemplate" and endpoint.key in (
            "coupons:template_disable", "coupons:issue",
        ):
            return {"status": CouponTemplate.Status.ACTIVE}
        return {}
    for suffix, status in PREFERRED_STATUS.items():
        if endpoint.key == suffix or endpoint.key.endswith(f"_{suffix}"):
            return {"status": status}
    return {}


def foreign_rows(label: str, scope, candidates: list[Partner], endpoint: Endpoint) -> list:
    """Rows of `label` in the candidate partners that are outside `scope`, best first."""
    model = model_for(label)
    spec = MODEL_SCOPE[label]
    if spec == GLOBAL:
        return list(model._default_manager.order_by("pk")[:1])
    if spec == USERS:
        rows = []
        for partner in candidates:
            rows += list(model._default_manager.filter(
                Q(partner_membership__partner=partner)
                | Q(subaccount_membership__sub_account__partner=partner),
            ).exclude(pk=getattr(scope.user, "pk", None)).order_by("pk")[:1])
        return rows
    rows = []
    for partner in candidates:
        qs = model._default_manager.filter(_owner_filter(label, [partner]))
        qs = qs.exclude(in_scope(label, scope))
        preferred = _status_filter(label, endpoint)
        row = qs.filter(**preferred).order_by("pk").first() or qs.order_by("pk").first()
        if row is not None:
            rows.append(row)
    return rows


def in_scope(label: str, scope) -> Q:
    """Rows of `label` the role may see; nothing matches for a role without a scope."""
    spec = MODEL_SCOPE[label]
    if scope.everything:
        return Q()
    if spec in (GLOBAL, USERS):
        return Q(pk__in=[])
    partner_path, account_path = spec
    if scope.sub_account_id is not None:
        if account_path is None:
            return Q(pk__in=[])
        return Q(**{account_path or "pk": scope.sub_account_id})
    key = f"{partner_path}__in" if partner_path else "pk__in"
    return Q(**{key: list(scope.partner_ids)})


def own_rows(label: str, scope, endpoint: Endpoint) -> list:
    spec = MODEL_SCOPE[label]
    if spec in (GLOBAL, USERS) or scope.user is None:
        return []
    if not scope.everything and not scope.partner_ids and scope.sub_account_id is None:
        return []
    model = model_for(label)
    qs = model._default_manager.filter(in_scope(label, scope))
    preferred = _status_filter(label, endpoint)
    row = qs.filter(**preferred).order_by("pk").first() or qs.order_by("pk").first()
    return [row] if row is not None else []


# ---------------------------------------------------------------------------------------
# Filling a pattern's parameters

APP_LABELS = ["accounts", "coupons", "approvals", "billing", "audit", "auth"]


def path_values(endpoint: Endpoint, scope, candidates, *, own: bool, turn: int = 0):
    """Values for every parameter of `endpoint`: the role's own rows (own=True) or rows of
    the candidate partners outside its scope; None when there is no such row of a kind.
    `turn` rotates the choices that are not rows (app labels, content types)."""
    values, object_label = {}, None
    for param in endpoint.params:
        kind = param_kind(endpoint, param)
        value = param_value(kind, endpoint, scope, candidates, own=own, turn=turn,
                            object_label=object_label)
        if value is None:
            return None
        if kind == "content_type":
            value, object_label = value
        values[param] = value
    return values


def param_value(kind, endpoint, scope, candidates, *, own, turn=0, object_label=None):
    if kind == "app_label":
        return APP_LABELS[turn % len(APP_LABELS)]
    if kind == "admin_path":
        return f"coupons/nosuchmodel/{turn + 1}/"
    if kind == "content_type":
        cts = content_types_with_pages()
        ct = cts[turn % len(cts)]
        return ct.pk, ct.model_class()._meta.label_lower
    if kind == "content_object":
        kind = object_label
    if kind in ("day", "month"):
        return _date_value(kind, scope, candidates, own=own)
    rows = (own_rows(kind, scope, endpoint) if own
            else foreign_rows(kind, scope, candidates, endpoint))
    return rows[0].pk if rows else None


def _date_value(kind, scope, candidates, *, own):
    from billing.models import DailyBill, MonthlyBill

    if own:
        if scope.sub_account_id is None:
            return None
        if kind == "day":
            day = (DailyBill.objects.filter(sub_account_id=scope.sub_account_id)
                   .order_by("date").values_list("date", flat=True).first())
            return day_str(day) if day else None
        month = (MonthlyBill.objects.filter(sub_account_id=scope.sub_account_id)
                 .order_by("month").values_list("month", flat=True).first())
        return month_str(month) if month else None
    # Days and months on which another account has a bill and this role's has none.
    own_days, own_months = set(), set()
    if scope.sub_account_id is not None:
        own_days = set(DailyBill.objects.filter(sub_account_id=scope.sub_account_id)
                       .values_list("date", flat=True))
        own_months = set(MonthlyBill.objects.filter(sub_account_id=scope.sub_account_id)
                         .values_list("month", flat=True))
    partner_ids = [p.pk for p in candidates]
    if kind == "day":
        day = (DailyBill.objects.filter(sub_account__partner_id__in=partner_ids)
               .exclude(date__in=own_days).order_by("date")
               .values_list("date", flat=True).first())
        return day_str(day) if day else None
    month = (MonthlyBill.objects.filter(sub_account__partner_id__in=partner_ids)
             .exclude(month__in=own_months).order_by("month")
             .values_list("month", flat=True).first())
    return month_str(month) if month else None


# ---------------------------------------------------------------------------------------
# Reading a response


def where(exc: BaseException) -> str:
    """The innermost frame of the project's own code in an exception's traceback."""
    import traceback

    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if "site-packages" not in f.filename]
    frame = (ours or frames)[-1]
    return f"{frame.filename.rsplit('/', 2)[-2:]!s}:{frame.lineno} ({frame.name})"


def body_text(response) -> str:
    """The text a user would get: HTML, JSON, CSV, or the cells of an XLSX file."""
    if getattr(response, "streaming", False):
        data = b"".join(response.streaming_content)
    else:
        data = response.content
    ctype = response.get("Content-Type", "")
    if "spreadsheetml" in ctype:
        from openpyxl import load_workbook

        book = load_workbook(io.BytesIO(data), read_only=True)
        cells = []
        for sheet in book.worksheets:
            for row in sheet.iter_rows(values_only=True):
                cells.extend("" if v is None else str(v) for v in row)
        return "\n".join(cells)
    return data.decode("utf-8", errors="replace")


TOKEN = re.compile(r"[A-Za-z0-9]{6,24}")
ATTRIBUTE = re.compile(r"""\s[\w:-]+=("[^"]*"|'[^']*')""")
TEXTAREA = re.compile(r"(<textarea[^>]*>).*?(</textarea>)", re.S | re.I)


def shown_text(response, text: str | None = None) -> str:
    """What a page shows as data: for HTML, without attribute values and textarea contents,
    where a form merely echoes what the user typed (a search box, a next= link). A
    streamed body can be read once: pass its `text` if it was."""
    text = body_text(response) if text is None else text
    if "html" in response.get("Content-Type", ""):
        text = ATTRIBUTE.sub(" ", TEXTAREA.sub(r"\1\2", text))
    return text


def sent_values(*payloads) -> set[str]:
    values = set()
    for payload in payloads:
        for value in (payload or {}).values():
            for item in value if isinstance(value, list | tuple) else [value]:
                values |= {str(item)} | set(str(item).split())
    return values


def leaks(text: str, markers: dict[str, set[str]], sent: set[str] = frozenset()) -> list[str]:
    """The foreign markers found in `text`: tokens (codes, account IDs) by exact token,
    names by substring; a value the request itself sent is an echo, not a leak."""
    found = []
    tokens = set(TOKEN.findall(text))
    found += sorted((tokens & markers["tokens"]) - sent)
    found += sorted(name for name in markers["names"] - sent if name in text)
    return found


# Writes any signed-in request may make: its session.
HOUSEKEEPING_TABLES = ('"django_session"',)


def writes(captured_queries) -> list[str]:
    """The INSERT, UPDATE and DELETE statements among captured queries, but for the
    session's and the login time's."""
    found = []
    for query in captured_queries:
        sql = query["sql"].lstrip()
        if not sql.startswith(("INSERT", "UPDATE", "DELETE")):
            continue
        head = sql.split("WHERE")[0]
        if any(t in head for t in HOUSEKEEPING_TABLES) or '"last_login"' in head:
            continue
        found.append(sql[:200])
    return found


# ---------------------------------------------------------------------------------------
# Markers and the state of rows, per tenant


def markers_outside(scope) -> dict[str, set[str]]:
    """Strings that only rows outside `scope` carry: showing one is a leak."""
    if scope.everything:
        return {"tokens": set(), "names": set()}

    def outside(label):
        model = model_for(label)
        return model._default_manager.exclude(in_scope(label, scope))

    tokens = set(outside("coupons.coupon").values_list("code", flat=True))
    tokens |= set(outside("accounts.subaccount").values_list("account_id", flat=True))
    names = set(outside("coupons.coupontemplate").values_list("name", flat=True))
    names |= set(outside("accounts.partner").values_list("name", flat=True))
    names |= {n for n in outside("accounts.subaccount").values_list("name", flat=True)
              if n.startswith("Zetaco")}
    names |= {r for r in outside("coupons.issuancerequest").values_list("reason", flat=True)
              if r.startswith("ZETA")}
    # A tier-2 reseller's account carries the reseller's name: its distributor shows it.
    names -= set(SubAccount.objects.filter(in_scope("accounts.subaccount", scope))
                 .values_list("name", flat=True))
    if scope.sub_account_id is not None:
        # A sub-account sees its partner's name and its own coupons' templates.
        account = SubAccount.objects.get(pk=scope.sub_account_id)
        names.discard(account.partner.name)
        names -= set(Coupon.objects.filter(sub_account=account)
                     .values_list("template__name", flat=True))
    else:
        # A tier-2 reseller is an account of its distributor: the distributor's name and
        # the reseller's own account row are about it.
        for partner in Partner.objects.filter(pk__in=scope.partner_ids):
            if partner.parent_id:
                names.discard(partner.parent.name)
            tokens -= set(SubAccount.objects.filter(reseller=partner)
                          .values_list("account_id", flat=True))
    return {"tokens": tokens, "names": names}


def fingerprint() -> dict[int, tuple]:
    """Per partner: every row a request could change that is about money, status or
    permission, in comparable form."""
    from billing.models import DailyBill, Deduction

    # (label, model, fields): the first field is the partner the row belongs to.
    sources = [
        ("partner", Partner, ("pk", "name", "bd_id", "coupon_enabled", "requires_bd_approval",
                              "parent_id")),
        ("budget", PlatformBudget, ("partner_id", "pk", "currency", "amount", "reserved",
                                    "consumed")),
        ("template", CouponTemplate, ("partner_id", "pk", "name", "status", "face_value",
                                      "released_count")),
        ("request", IssuanceRequest, ("partner_id", "pk", "status", "decided_by_id", "reason",
                                      "recipient_count")),
        ("coupon", Coupon, ("partner_id", "pk", "status", "balance", "voided_amount",
                            "sub_account_id")),
        ("account", SubAccount, ("partner_id", "pk", "account_id", "name")),
        ("deduction", Deduction, ("partner_id", "pk", "amount")),
        ("dailybill", DailyBill, ("sub_account__partner_id", "pk", "payable_amount",
                                  "deduction_amount")),
    ]
    state: dict[int, list] = {}
    for label, model, fields in sources:
        for row in model.objects.values_list(*fields):
            state.setdefault(row[0], []).append((label,) + row)
    return {k: tuple(sorted(v, key=repr)) for k, v in state.items()}


def foreign_changes(before: dict, after: dict, scope) -> list[int]:
    """Partners outside `scope` whose rows differ."""
    if scope.everything:
        return []
    own = set(scope.partner_ids)
    keys = set(before) | set(after)
    return sorted(k for k in keys if k not in own and before.get(k) != after.get(k))


def content_types_with_pages() -> list[ContentType]:
    return [ContentType.objects.get_for_model(m) for m in (CouponTemplate, IssuanceRequest)]


def day_str(value: date) -> str:
    return value.strftime("%Y-%m-%d")


def month_str(value: date) -> str:
    return value.strftime("%Y-%m")
