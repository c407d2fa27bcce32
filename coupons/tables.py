"""Tables of the partner console."""
import django_tables2 as tables
from django.urls import reverse
from django.utils.functional import lazy
from django.utils.html import escape, format_html
from django.utils.http import urlencode
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext, pgettext_lazy
from django_tables2.templatetags.django_tables2 import table_page_range

from accounts.models import SubAccount
from couponplatform.money import fmt
from coupons.models import CouponKind, CouponTemplate
from coupons.rules import account_refusals

NOWRAP = {"td": {"class": "nowrap"}}


def unbroken(text: str) -> str:
    """A piece of a cell that must not wrap (an amount, a date); the cell may wrap
    between such pieces."""
    return format_html('<span class="nowrap">{}</span>', text)


class CouponTemplateTable(tables.Table):
    """Fits 1,280 px without a sideways scroll: headers, dates, amounts, cost bearers and
    the button never wrap; the name and the terms wrap between their pieces."""

    id = tables.Column(verbose_name=gettext_lazy("ID"))
    name = tables.LinkColumn("coupons:template_detail", args=[tables.A("pk")],
                             verbose_name=gettext_lazy("Name"))
    kind = tables.Column(verbose_name=gettext_lazy("Kind"))
    value = tables.Column(empty_values=(), orderable=False, verbose_name=gettext_lazy("Value"))
    cost_bearer = tables.Column(verbose_name=gettext_lazy("Cost bearer"), attrs=NOWRAP)
    issue_limit = tables.Column(verbose_name=gettext_lazy("Issue limit"), attrs=NOWRAP)
    validity = tables.Column(empty_values=(), orderable=False,
                             verbose_name=gettext_lazy("Validity"))
    released_count = tables.Column(verbose_name=pgettext_lazy("coupons released", "Issued"),

                                   attrs={"td": {"class": "money"}})
    status = tables.Column(verbose_name=gettext_lazy("Status"))
    created_at = tables.DateTimeColumn(format="Y-m-d", verbose_name=gettext_lazy("Created"),
                                       attrs=NOWRAP)
    actions = tables.Column(empty_values=(), orderable=False, verbose_name="", attrs=NOWRAP)

    class Meta:
        model = CouponTemplate
        fields = ("id", "name", "kind", "value", "cost_bearer", "issue_limit", "validity",
                  "released_count", "status", "created_at")
        order_by = ("-created_at",)
        attrs = {"class": "table table-sm table-hover align-middle", "th": {"class": "nowrap"}}

    def render_value(self, record):
        amount = unbroken(fmt(record.face_value, record.currency))
        if record.kind == CouponKind.DISCOUNT:
            rate = record.discount_rate.normalize()
            uses = ngettext("%(n)s use", "%(n)s uses", record.discount_uses) % {
                "n": record.discount_uses}
            return format_html(_("{rate} off, up to {cap}, {uses}"), rate=unbroken(f"{rate:f} %"),
                               cap=amount, uses=uses)
        if record.kind == CouponKind.THRESHOLD:
            return format_html(_("{face} on lines ≥ {minimum}"), face=amount,
                               minimum=unbroken(fmt(record.min_bill_amount, record.currency)))
        return amount

    def render_validity(self, record):
        if record.validity_type == CouponTemplate.ValidityType.FIXED:
            return format_html("{} → {}", unbroken(f"{record.valid_from:%Y-%m-%d}"),
                               unbroken(f"{record.valid_until:%Y-%m-%d}"))
        return ngettext("%(n)s day from release", "%(n)s days from release",
                        record.valid_days) % {"n": record.valid_days}

    def render_released_count(self, record):
        if record.release_cap_count:
            return _("%(released)s of %(cap)s") % {"released": f"{record.released_count:,}",
                                                   "cap": f"{record.release_cap_count:,}"}
        return f"{record.released_count:,}"

    def render_status(self, value, record):
        css = "success" if record.status == CouponTemplate.Status.ACTIVE else "secondary"
        return format_html('<span class="badge text-bg-{}">{}</span>', css, value)

    def render_actions(self, record):
        if record.status != CouponTemplate.Status.ACTIVE:
            return ""
        return format_html(
            '<a class="btn btn-sm btn-primary" href="{}">{}</a>',
            reverse("coupons:issue", args=[record.pk]), _("Issue Coupon"),
        )

    def order_created_at(self, queryset, is_descending):
        prefix = "-" if is_descending else ""
        return queryset.order_by(f"{prefix}created_at", f"{prefix}id"), True


# ---------------------------------------------------------------------------------------
# Issue Coupon


# Markup with words in it, made in the active language when a page draws it.
SELECT_ALL = lazy(lambda: format_html(
    '<input type="checkbox" class="form-check-input" id="pick-all" aria-label="{}">',
    _("Tick every selectable account on this page")), SafeString)()
SELECTED_BADGE = lazy(lambda: format_html('<span class="badge text-bg-success">{}</span>',
                                          _("Selected")), SafeString)()
NOT_SELECTABLE_BOX = lazy(lambda: format_html(
    '<input type="checkbox" class="form-check-input" disabled aria-label="{}">',
    _("Not selectable")), SafeString)()
TYPE_LABELS = dict(SubAccount.Type.choices)


def querystring(request, **updates) -> str:
    """The request's query string with `updates` replacing their keys, escaped for an
    attribute: what django-tables2's `{% querystring_replace %}` gives."""
    params = dict(request.GET.lists()) if request is not None else {}
    params.update(updates)
    return escape("?" + urlencode(params, doseq=True))


class LeanHeaderMixin:
    """The header row of a table drawn by a lean template instead of django-tables2's."""

    def lean_header(self) -> list[tuple[str, str | None, str]]:
        """(th attributes, sort link or None, label) of each shown column; the sort links
        keep the request's other parameters (filters, page size)."""
        request = getattr(self, "request", None)
        cells = []
        for column in self.columns:
            href = None
            if column.orderable:
                href = querystring(
                    request, **{self.prefixed_order_by_field: column.order_by_alias.next},
                )
            cells.append((column.attrs["th"].as_html(), href, column.header))
        return cells


class AccountTable(LeanHeaderMixin, tables.Table):
    """The Issue Coupon account list.

    django-tables2 keeps doing the ordering (`?sort=`) and the paging (`?page=`,
    `?per_page=`, at most 100) through `couponplatform.paging.BoundedRequestConfig`; the
    lean `coupons/_account_table.html` renders
    the table from `lean_header`, `lean_rows` and `lean_pagination` below: the same cells,
    sort links and page links as django-tables2's bootstrap5 template, without its per-cell
    machinery (most of the page's CPU before). Text is escaped by the template; the only
    markup is built here with `format_html` or is constant.
    """

    pick = tables.Column(empty_values=(), orderable=False, verbose_name=SELECT_ALL)
    account_id = tables.Column(verbose_name=gettext_lazy("Account ID"))
    name = tables.Column(verbose_name=gettext_lazy("Name"))
    type = tables.Column(verbose_name=gettext_lazy("Type"))
    state = tables.Column(empty_values=(), orderable=False, verbose_name="")

    class Meta:
        attrs = {"class": "table table-sm table-hover align-middle mb-1"}
        order_by = ("name",)
        template_name = "coupons/_account_table.html"

    def __init__(self, *args, template, selected: set[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.template = template
        self.selected = selected

    def blocked_reason(self, record) -> str | None:
        """The first reason the row's account can not be selected (coupons/rules.py)."""
        refusals = account_refusals(template=self.template, account=record,
                                    holds=getattr(record, "holds_template", False))
        return refusals[0].row(account_currency=record.currency) if refusals else None

    def render_pick(self, record):
        return self._cells(record)[0]

    def render_state(self, record):
        return self._cells(record)[4]

    def render_account_id(self, value):
        return format_html("<code>{}</code>", value)

    def order_name(self, queryset, is_descending):
        prefix = "-" if is_descending else ""
        return queryset.order_by(f"{prefix}name", f"{prefix}id"), True

    def order_account_id(self, queryset, is_descending):
        prefix = "-" if is_descending else ""
        return queryset.order_by(f"{prefix}account_id"), True

    # The lean template's parts ---------------------------------------------------------

    def _cells(self, record) -> tuple:
        """(pick, account ID, name, type, state) of one row; name is text, the rest HTML."""
        account_id = record.account_id
        # An empty value shows the table's default ("—"), as django-tables2 shows it.
        code = format_html("<code>{}</code>", account_id) if account_id else self.default
        name = record.name or self.default
        kind = TYPE_LABELS.get(record.type, record.type) or self.default
        if account_id in self.selected:
            # Ticked and, until static/js/issue.js enables it, not to be unticked: without
            # JavaScript, Selected Accounts' Remove takes an account out.
            pick = format_html(
                '<input type="checkbox" class="form-check-input pick" value="{}" checked '
                'disabled aria-label="{}">', account_id,
                _("Selected: untick to remove %(id)s") % {"id": account_id},
            )
            return pick, code, name, kind, SELECTED_BADGE
        reason = self.blocked_reason(record)
        if reason:
            state = format_html('<span class="badge text-bg-secondary">{}</span> '
                                '<small class="text-muted">{}</small>', _("Not selectable"),
                                reason)
            return NOT_SELECTABLE_BOX, code, name, kind, state
        pick = format_html(
            '<input type="checkbox" class="form-check-input pick" name="pick" value="{}" '
            'aria-label="{}">',
            account_id, _("Select %(id)s") % {"id": account_id},
        )
        return pick, code, name, kind, ""

    def lean_rows(self) -> list[tuple]:
        """The current page's rows: (pick, account ID, name, type, state)."""
        return [self._cells(row.record) for row in self.paginated_rows]

    def lean_pagination(self) -> dict | None:
        """Previous/next and numbered page links, as the bootstrap5 template shows them;
        None when everything fits on one page."""
        page = getattr(self, "page", None)
        if not page or self.paginator.num_pages <= 1:
            return None
        request = getattr(self, "request", None)
        field = self.prefixed_page_field

        def link(number):
            return querystring(request, **{field: number})

        return {
            "previous": link(page.previous_page_number()) if page.has_previous() else None,
            "pages": [
                (p, p == page.number, None if p == "..." else link(p))
                for p in table_page_range(page, self.paginator)
            ],
            "next": link(page.next_page_number()) if page.has_next() else None,
        }
