"""Helpers of the billing page tests: state built through the services (submit → approve →
release, usage import, daily bills with eager posting, month close, expiry, void), and a
small HTML reader so a test can compare what a page shows with the rows behind it."""
import csv
import io
import re
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from html.parser import HTMLParser
from unittest import mock

from django.db import transaction
from django.utils import timezone

from accounts.models import Partner, SubAccount
from billing import coupon_status, month_close
from billing.models import Deduction
from coupons.models import Coupon, CouponTemplate
from tests import factories as f
from tests.billing.helpers import D  # noqa: F401  (re-exported for the page tests)

# ---------------------------------------------------------------------------------------
# The platform clock (on-commit work runs through tests.factories.committed; posting is
# eager in the tests)


def clock(at: datetime | None):
    """Move the platform clock to `at` (an aware datetime) for the block, or leave it."""
    if at is None:
        return nullcontext()
    return mock.patch("django.utils.timezone.now", return_value=at)


def local(day: date, hour: int = 10) -> datetime:
    return timezone.make_aware(datetime.combine(day, time(hour)))


# ---------------------------------------------------------------------------------------
# State through the services


def template(partner: Partner, user, name: str, *, face="50.00", cost_bearer="partner",
             valid: tuple[date, date] | None = None, valid_days: int = 30,
             currency="USD") -> CouponTemplate:
    extra = (dict(validity_type="fixed", valid_from=valid[0], valid_until=valid[1])
             if valid else dict(validity_type="relative", valid_days=valid_days))
    return f.make_template(partner, user, name=name, face_value=Decimal(face),
                           cost_bearer=cost_bearer, issue_limit="unlimited",
                           currency=currency, **extra)


def issue(tpl: CouponTemplate, partner_user, bd, accounts, *, at: datetime | None = None
          ) -> list[Coupon]:
    """tests.factories.issue, the release at `at`."""
    with clock(at):
        return f.issue(tpl, partner_user, bd, accounts)


def bill(rows, days=None) -> None:
    """Import usage rows (account, day, product, amount) and make the days' bills; the
    postings queued on commit run at once (eager Celery)."""
    f.bill_usage(rows, days, file_name="pages.csv")


def account(partner: Partner, account_id: str, name: str, currency="USD") -> SubAccount:
    return SubAccount.objects.create(partner=partner, account_id=account_id, name=name,
                                     currency=currency)


def previous_month_end(today: date) -> date:
    return today.replace(day=1) - timedelta(days=1)


@dataclass
class World:
    """Two partners' coupons, usage, bills and deductions, as PRODUCT §6–§8 describe.

    Distributor "Dist One" (BD `bd`): sub-accounts A (CA-0001, "Alpha Co") and B (CB-0002,
    "Beta Ltd"). Other partner "Rival" (its own BD): sub-account X (XR-0009, "Xeno Corp").
    A holds coupons in every status, B one available coupon, X one coupon of Rival.
    Days: `old` (last day of two months ago: A's usage, nothing deducted), `d1`, `d2` (the
    last two days of last month: A, B and X's usage, paid by coupons).
    """

    today: date
    old: date
    d1: date
    d2: date
    partner: Partner
    admin: object
    operator: object
    viewer: object
    bd: object
    a: SubAccount
    b: SubAccount
    a_user: object
    b_user: object
    templates: dict[str, CouponTemplate]
    coupons: dict[str, Coupon]
    rival: Partner
    rival_admin: object
    x: SubAccount
    x_user: object
    rival_template: CouponTemplate
    x_coupon: Coupon

    def refresh(self) -> None:
        """Reload what a test may have changed in memory (its rows were rolled back)."""
        for row in (*self.coupons.values(), self.x_coupon, self.partner, self.rival):
            row.refresh_from_db()
        for user in (self.admin, self.operator, self.viewer, self.rival_admin):
            user.__dict__.pop("_membership_cache", None)

    def partner_coupons(self) -> list[Coupon]:
        return list(Coupon.objects.filter(partner=self.partner))


@contextmanager
def shared_world(django_db_blocker):
    """A World kept for a class of tests: built once in an outer transaction that each
    test's own transaction nests in (a savepoint, rolled back after the test), and rolled
    back when the class is done. Usernames differ from the shared fixtures' ones."""
    with django_db_blocker.unblock():
        outer = transaction.atomic()
        outer.__enter__()
        try:
            with f.fast_passwords():
                world = build_world()
        except BaseException:
            transaction.set_rollback(True)
            outer.__exit__(None, None, None)
            raise
    try:
        yield world
    finally:
        with django_db_blocker.unblock():
            transaction.set_rollback(True)
            outer.__exit__(None, None, None)


def build_world() -> World:
    """The World, in the current transaction, dated from today."""
    started = timezone.now()
    today = timezone.localdate(started)
    d2 = previous_month_end(today)
    d1 = d2 - timedelta(days=1)
    old = previous_month_end(d2)
    shop = f.make_shop(name="Dist One", bd=f.make_bd("w-bd"), budget="10000.00",
                       admin="w-admin", operator="w-operator", viewer="w-viewer",
                       template=False)
    distributor, admin, bd = shop.partner, shop.admin, shop.bd
    f.make_product("ecs")
    f.make_product("oss")
    a = account(distributor, "CA-0001", "Alpha Co")
    b = account(distributor, "CB-0002", "Beta Ltd")
    rival_shop = f.make_shop(name="Rival", bd=f.make_bd("rival-bd"), budget="5000.00",
                             admin="rival-admin", template=False)
    rival, rival_admin, rival_bd = rival_shop.partner, rival_shop.admin, rival_shop.bd
    x = account(rival, "XR-0009", "Xeno Corp")

    window = (d1, today + timedelta(days=60))
    templates = {
        "welcome": template(distributor, admin, "Welcome cash", face="40.00", valid=window),
        "promo": template(distributor, admin, "Platform promo", face="100.00",
                          cost_bearer="platform", valid=(d1, today + timedelta(days=90))),
        "short": template(distributor, admin, "Short window", face="10.00",
                          valid=(today, today)),
        "voidable": template(distributor, admin, "Goodwill", face="20.00", valid_days=30),
    }
    rival_template = template(rival, rival_admin, "Rival welcome", face="30.00", valid=window)

    welcome = issue(templates["welcome"], admin, bd, [a, b], at=local(d1 - timedelta(days=3)))
    # Released at 02:00 local time: a day earlier in UTC, so a page or export that shows
    # the UTC day instead of the platform's shows the wrong one.
    [promo] = issue(templates["promo"], admin, bd, [a],
                    at=local(d1 - timedelta(days=1), hour=2))
    # Released at the moment the world's "today" was read: a window of that one day still
    # holds when the build runs past the platform's midnight.
    [short] = issue(templates["short"], admin, bd, [a], at=started)
    [voidable] = issue(templates["voidable"], admin, bd, [a])
    [x_coupon] = issue(rival_template, rival_admin, rival_bd, [x],
                       at=local(d1 - timedelta(days=2)))

    bill([
        (a, old, "ecs", "3.00"),
        (a, d1, "ecs", "25.00"), (b, d1, "ecs", "12.34"), (x, d1, "ecs", "9.99"),
        (a, d2, "ecs", "20.00"), (a, d2, "oss", "7.50"),
    ])
    month_close.month_close(month=old.replace(day=1))
    month_close.month_close(month=d2.replace(day=1))
    coupon_status.coupons_expire(today=today + timedelta(days=1))
    coupon_status.coupon_void(coupon=voidable, acting_user=admin, reason="Issued by mistake")

    world = World(
        today=today, old=old, d1=d1, d2=d2, partner=distributor, admin=admin,
        operator=shop.operator, viewer=shop.viewer, bd=bd, a=a, b=b,
        a_user=f.make_subaccount_user(a, "alpha-user"),
        b_user=f.make_subaccount_user(b, "beta-user"),
        templates=templates,
        coupons={"a_welcome": welcome[0], "b_welcome": welcome[1], "a_promo": promo,
                 "a_short": short, "a_voided": voidable},
        rival=rival, rival_admin=rival_admin, x=x,
        x_user=f.make_subaccount_user(x, "xeno-user"),
        rival_template=rival_template, x_coupon=x_coupon,
    )
    world.refresh()
    return world


def deductions_of(coupon: Coupon) -> list[tuple[date, str, Decimal]]:
    return list(
        Deduction.objects.filter(coupon=coupon).order_by("bill_date", "pk")
        .values_list("bill_date", "line__product__code", "amount")
    )


def used(coupon: Coupon) -> Decimal:
    return coupon.amount - coupon.balance - coupon.voided_amount


# ---------------------------------------------------------------------------------------
# Reading pages


VOID_TAGS = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta",
             "source", "track", "wbr"}


class Node:
    def __init__(self, tag: str, attrs: dict, parent: "Node | None" = None):
        self.tag, self.attrs, self.parent = tag, attrs, parent
        self.children: list = []

    @property
    def classes(self) -> set[str]:
        return set((self.attrs.get("class") or "").split())

    def text(self) -> str:
        parts = []
        for child in self.children:
            parts.append(child.text() if isinstance(child, Node) else child)
        return " ".join(" ".join(parts).split())

    def iter(self):
        for child in self.children:
            if isinstance(child, Node):
                yield child
                yield from child.iter()

    def find_all(self, tag: str | None = None, *, id: str | None = None,
                 cls: str | None = None) -> list["Node"]:
        return [
            node for node in self.iter()
            if (tag is None or node.tag == tag)
            and (id is None or node.attrs.get("id") == id)
            and (cls is None or cls in node.classes)
        ]

    def find(self, tag: str | None = None, **kwargs) -> "Node":
        found = self.find_all(tag, **kwargs)
        assert found, f"no <{tag or '*'} {kwargs}> on the page"
        return found[0]


class _TreeBuilder(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.root = Node("#root", {})
        self.current = self.root

    def handle_starttag(self, tag, attrs):
        node = Node(tag, {k: (v or "") for k, v in attrs}, self.current)
        self.current.children.append(node)
        if tag not in VOID_TAGS:
            self.current = node

    def handle_startendtag(self, tag, attrs):
        self.current.children.append(Node(tag, {k: (v or "") for k, v in attrs}, self.current))

    def handle_endtag(self, tag):
        node = self.current
        while node is not None and node.tag != tag:
            node = node.parent
        if node is not None and node.parent is not None:
            self.current = node.parent

    def handle_data(self, data):
        self.current.children.append(data)


def parse(response_or_html) -> Node:
    html = (response_or_html if isinstance(response_or_html, str)
            else response_or_html.content.decode())
    builder = _TreeBuilder()
    builder.feed(html)
    builder.close()
    return builder.root


def table_cells(root: Node, *, id: str | None = None, table: Node | None = None,
                section: str = "tbody") -> list[list[Node]]:
    table = table or root.find("table", id=id)
    body = table.find(section)
    return [[cell for cell in row.children if isinstance(cell, Node)
             and cell.tag in ("td", "th")] for row in body.find_all("tr")]


def table_rows(root: Node, **kwargs) -> list[list[str]]:
    return [[cell.text() for cell in row] for row in table_cells(root, **kwargs)]


def money(text: str) -> Decimal:
    """'1,234.50 USD' → Decimal('1234.50')."""
    return Decimal(text.split()[0].replace(",", ""))


def amounts(row: list[str]) -> list:
    """A bill row as [its first cell, then each money cell as a Decimal]."""
    return [row[0], *(money(cell) for cell in row[1:] if cell)]


_PAID = re.compile(r"\b(CP[A-Z0-9]{14})\b\D*?(\d[\d,]*\.\d{2})")


def paid_by(text: str) -> list[tuple[str, Decimal]]:
    """The (coupon code, amount) pairs of a bill line's "Paid by coupons" cell."""
    return [(code, money(amount)) for code, amount in _PAID.findall(text)]


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]] if response.context else []


# ---------------------------------------------------------------------------------------
# Exports


def body(response) -> bytes:
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content)
    return response.content


def csv_rows(response) -> list[list[str]]:
    text = body(response).decode("utf-8")
    assert text.startswith("\ufeff"), "the CSV starts with a BOM so Excel reads UTF-8"
    return list(csv.reader(io.StringIO(text[1:])))


def xlsx_rows(response) -> tuple[list[list], list[list[str]]]:
    """(values, data types) of every row of the first sheet."""
    from openpyxl import load_workbook

    book = load_workbook(io.BytesIO(body(response)))
    sheet = book.worksheets[0]
    values = [[cell.value for cell in row] for row in sheet.iter_rows()]
    types = [[cell.data_type for cell in row] for row in sheet.iter_rows()]
    return values, types
