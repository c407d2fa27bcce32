"""Tables of the billing pages."""
from decimal import Decimal

import django_tables2 as tables
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import mark_safe
from django.utils.timezone import template_localtime
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django_tables2.templatetags.django_tables2 import table_page_range
from django_tables2.utils import AttributeDict

from couponplatform.templatetags.money import amount_html
from coupons import terms
from coupons.models import Coupon
from coupons.tables import LeanHeaderMixin, querystring

STATUS_CSS = {"available": "success", "used_up": "secondary", "expired": "warning",
              "voided": "dark"}
# A cell whose value is one of these shows the column's default ("—"), as in django-tables2.
EMPTY = (None, "")
ROW_CLASS = (mark_safe('class="even"'), mark_safe('class="odd"'))


class CouponUsageTable(LeanHeaderMixin, tables.Table):
    """Coupon Usage's coupon list.

    django-tables2 keeps doing the ordering (`?sort=`) and the paging (`?page=`, with the
    view's `BoundedLazyPaginator`: no COUNT) through `couponplatform.paging`'s
    `BoundedRequestConfig` (at most 100 rows a page); the lean
    `billing/_coupon_usage_table.html` renders the table from `lean_header`, `lean_rows`
    and `lean_pagination` below: the markup of django-tables2's bootstrap5-responsive
    template, with the same `render_*` methods for the cells, without its per-cell
    machinery (most of the page's CPU before). Text is escaped by the template; markup is
    built with `format_html` or is constant.
    """

    code = tables.Column(verbose_name=gettext_lazy("Code"))
    sub_account = tables.Column(verbose_name=gettext_lazy("Sub-account"),
                                order_by=("sub_account__account_id", "id"))
    template = tables.Column(verbose_name=gettext_lazy("Template"),
                             order_by=("template__name", "id"))
    cost_bearer = tables.Column(verbose_name=gettext_lazy("Cost bearer"),
                                attrs={"td": {"class": "nowrap"}})
    amount = tables.Column(verbose_name=gettext_lazy("Amount"),
                           attrs={"td": {"class": "money terms"}, "th": {"class": "money"}})
    used = tables.Column(verbose_name=gettext_lazy("Used"),
                         attrs={"td": {"class": "money"}, "th": {"class": "money"}})
    balance = tables.Column(verbose_name=gettext_lazy("Remaining"),
                            attrs={"td": {"class": "money"}, "th": {"class": "money"}})
    valid_until = tables.Column(verbose_name=gettext_lazy("Validity"),
                                attrs={"td": {"class": "nowrap"}})
    status = tables.Column(verbose_name=gettext_lazy("Status"))
    released_at = tables.DateTimeColumn(format="Y-m-d", verbose_name=gettext_lazy("Released"),
                                        attrs={"td": {"class": "nowrap"}})
    actions = tables.Column(empty_values=(), orderable=False, verbose_name="")

    class Meta:
        model = Coupon
        fields = ("code", "sub_account", "template", "cost_bearer", "amount", "used", "balance",
                  "valid_until", "status", "released_at", "actions")
        order_by = ("-released_at",)
        # Eleven columns in 1,280 px: small type, headers on one line (coupon-usage in
        # static/css/app.css), a discount's terms wrapping between their pieces.
        attrs = {"class": "table table-sm table-hover align-middle small coupon-usage"}
        template_name = "billing/_coupon_usage_table.html"

    def __init__(self, *args, can_void: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.can_void = can_void
        if not can_void:
            self.columns.hide("actions")

    def render_actions(self, record):
        if not self.can_void or record.status != Coupon.Status.AVAILABLE:
            return ""
        return format_html('<a class="btn btn-sm btn-outline-danger nowrap" href="{}">{}</a>',
                           reverse("coupon_void", args=[record.pk]), _("Void"))

    def render_code(self, record):
        return format_html('<a href="{}"><code>{}</code></a>',
                           reverse("coupon_detail", args=[record.pk]), record.code)

    def render_sub_account(self, record):
        return format_html("<code>{}</code> {}", record.sub_account.account_id,
                           record.sub_account.name)

    def render_amount(self, record):
        return terms.value_html(record)  # a discount as its rate and cap, not cap × uses

    def render_used(self, record):
        # SQLite hands back the computed column as a number without places.
        return amount_html(Decimal(str(record.used)), record.currency)

    def render_balance(self, record):
        return terms.remaining_html(record)

    def render_valid_until(self, record):
        # Two dates that may stack at a narrow width, each on one line.
        return format_html('<span class="nowrap">{} →</span> <span class="nowrap">{}</span>',
                           f"{record.valid_from:%Y-%m-%d}", f"{record.valid_until:%Y-%m-%d}")

    def render_status(self, record):
        return format_html('<span class="badge text-bg-{}">{}</span>',
                           STATUS_CSS.get(record.status, "secondary"),
                           record.get_status_display())

    # Every ordering ends on the unique id, so pages never repeat or skip a row.
    def _order(self, queryset, is_descending, field):
        prefix = "-" if is_descending else ""
        return queryset.order_by(f"{prefix}{field}", f"{prefix}id"), True

    def order_released_at(self, queryset, is_descending):
        return self._order(queryset, is_descending, "released_at")

    def order_code(self, queryset, is_descending):
        return self._order(queryset, is_descending, "code")

    def order_amount(self, queryset, is_descending):
        return self._order(queryset, is_descending, "amount")

    def order_used(self, queryset, is_descending):
        return self._order(queryset, is_descending, "used")

    def order_balance(self, queryset, is_descending):
        return self._order(queryset, is_descending, "balance")

    def order_valid_until(self, queryset, is_descending):
        return self._order(queryset, is_descending, "valid_until")

    def order_status(self, queryset, is_descending):
        return self._order(queryset, is_descending, "status")

    def order_cost_bearer(self, queryset, is_descending):
        return self._order(queryset, is_descending, "cost_bearer")

    # The lean template's parts ---------------------------------------------------------

    def _cells(self, record, defaults: dict) -> dict:
        """Every cell of one row by column name, as django-tables2 makes it: an empty value
        shows the column's default, a field with choices its display value, the rest goes
        through the column's render_* method (or is the value itself)."""
        code, sub_account, template = record.code, record.sub_account, record.template
        cost_bearer, status = record.get_cost_bearer_display(), record.get_status_display()
        released_at = record.released_at
        if released_at is not None:  # DateTimeColumn: {{ value|date:"Y-m-d"|default:default }}
            day = template_localtime(released_at)  # the platform's day, as the filter shows
            released_at = f"{day.year:04d}-{day.month:02d}-{day.day:02d}"
        return {
            "code": defaults["code"] if code in EMPTY else self.render_code(record),
            "sub_account": (defaults["sub_account"] if sub_account in EMPTY
                            else self.render_sub_account(record)),
            "template": defaults["template"] if template in EMPTY else str(template),
            "cost_bearer": defaults["cost_bearer"] if cost_bearer in EMPTY else cost_bearer,
            "amount": defaults["amount"] if record.amount in EMPTY else self.render_amount(record),
            "used": defaults["used"] if record.used in EMPTY else self.render_used(record),
            "balance": (defaults["balance"] if record.balance in EMPTY
                        else self.render_balance(record)),
            "valid_until": (defaults["valid_until"] if record.valid_until in EMPTY
                            else self.render_valid_until(record)),
            "status": defaults["status"] if status in EMPTY else self.render_status(record),
            "released_at": released_at or defaults["released_at"],
            "actions": self.render_actions(record) if self.can_void else "",
        }

    def lean_table_attrs(self) -> str:
        """The <table> attributes, as `{% render_attrs table.attrs class="table" %}`."""
        return AttributeDict({"class": "table", **self.attrs}).as_html()

    def lean_rows(self) -> list[tuple[str, list[tuple[str, object]]]]:
        """The current page's rows: (tr attributes, [(td attributes, cell), …])."""
        columns, defaults = [], {}
        for column in self.columns.iterall():
            defaults[column.name] = column.default
        for column in self.columns:
            attrs = column.attrs["td"].as_html()
            columns.append((column.name, format_html(" {}", attrs) if attrs else ""))
        rows = []
        for row in self.paginated_rows:
            cells = self._cells(row.record, defaults)
            tr = row.attrs.as_html() if self.row_attrs else ROW_CLASS[row.row_counter % 2]
            rows.append((tr, [(attrs, cells[name]) for name, attrs in columns]))
        return rows

    def lean_pagination(self) -> dict | None:
        """Previous/next and numbered page links, as the bootstrap5 template shows them;
        None when everything fits on one page. The paginator is lazy: it knows of the next
        page only (no COUNT), so there is a next link only when there is a next page."""
        page = getattr(self, "page", None)
        if not page or not (self.paginator.num_pages or 0) > 1:
            return None
        request = getattr(self, "request", None)
        field = self.prefixed_page_field

        def link(number):
            return querystring(request, **{field: number})

        pages = []
        if page.has_previous() or page.has_next():
            pages = [(p, p == page.number, None if p == "..." else link(p))
                     for p in table_page_range(page, self.paginator)]
        return {
            "previous": link(page.previous_page_number()) if page.has_previous() else None,
            "pages": pages,
            "next": link(page.next_page_number()) if page.has_next() else None,
        }
