"""How every list page reads its paging and sorting parameters (`page`, `per_page`,
`sort`): whatever a request sends, a page of at most PER_PAGE_MAX rows, never an error.

django-tables2's RequestConfig takes `per_page` as given: -1 made the paginator raise on
its own fallback, -1000 a negative slice, 10**20 a LIMIT past bigint (500s), and 100000 a
page of every row. Here a size below 1 is ignored (the page's default) and one above the
cap is the cap; the export is the way to get every row. Page numbers and sort columns
behave as django-tables2 has them (an unknown column is ignored, a page past the end shows
the last), except that no page number can fail the fallback.
"""
from django.core.paginator import EmptyPage, PageNotAnInteger
from django_tables2 import RequestConfig, SingleTableMixin

PER_PAGE_MAX = 100


def _int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):  # also a string past Python's digit limit
        return None


def per_page_bounded(value, default: int) -> int:
    """`value` (as sent) as a page size: within 1..PER_PAGE_MAX, else `default`."""
    size = _int(value)
    if size is None or size < 1:
        return min(default, PER_PAGE_MAX)
    return min(size, PER_PAGE_MAX)


class BoundedRequestConfig(RequestConfig):
    """RequestConfig with the page size bounded and a fallback page that always exists."""

    def configure(self, table):
        table.request = self.request
        order_by = self.request.GET.getlist(table.prefixed_order_by_field)
        if order_by:
            table.order_by = order_by  # unknown columns are dropped by the table
        if not self.paginate:
            return table
        kwargs = dict(self.paginate) if hasattr(self.paginate, "items") else {}
        kwargs.pop("silent", None)
        default = kwargs.get("per_page") or table._meta.per_page
        kwargs["per_page"] = per_page_bounded(
            self.request.GET.get(table.prefixed_per_page_field), default,
        )
        page = _int(self.request.GET.get(table.prefixed_page_field))
        if page is not None:
            kwargs["page"] = page
        try:
            table.paginate(**kwargs)
        except PageNotAnInteger:
            table.page = table.paginator.page(1)
        except EmptyPage:
            try:
                table.page = table.paginator.page(table.paginator.num_pages)
            except EmptyPage:
                table.page = table.paginator.page(1)
        return table


class BoundedTableMixin(SingleTableMixin):
    """SingleTableMixin whose table is configured by BoundedRequestConfig. List pages set
    their page size in `table_pagination`, not ListView's `paginate_by`, which would page
    the queryset a second time (a COUNT, and a 404 for a page it does not like)."""

    def get_table(self, **kwargs):
        table = self.get_table_class()(data=self.get_table_data(), **kwargs)
        return BoundedRequestConfig(
            self.request, paginate=self.get_table_pagination(table),
        ).configure(table)
