"""The roles table itself: the code's (accounts/permissions.ACTIONS) is what docs/ROLES.md
shows, and reads the product as PRODUCT §1 and §6 say. tests/security/test_roles.py and
test_roles_services.py walk it."""
import re
from pathlib import Path

from django.conf import settings

from accounts import permissions as perms
from tests.security.test_roles import ADM, BD, BD2, OPR, SU, TABLE, VIE


def test_the_table_reads_the_product_as_it_says():
    """The readings of PRODUCT §1 and §6 the table takes, stated apart from it: a partner
    admin does everything in the console; an operator creates templates, issues and
    cancels, but neither disables a template (that stops a programme), voids a coupon
    (that withdraws a sub-account's money) nor makes API keys and webhook endpoints (they
    act for the partner in its systems); a viewer only reads, and may export what it
    reads; the BD decides in the admin, and only the platform operator assigns BDs and
    uploads usage."""
    console = [a for a, spec in perms.ACTIONS.items() if spec.where == perms.CONSOLE]
    assert all(ADM in TABLE[a] for a in console)
    assert TABLE["template_disable"] == TABLE["coupon_void"] == TABLE["api_keys_manage"] == (
        TABLE["webhooks_manage"]) == {ADM}
    assert {a for a in console if OPR in TABLE[a]} == set(console) - {
        "template_disable", "coupon_void", "api_keys_manage", "webhooks_manage"}
    assert {a for a in console if VIE in TABLE[a]} == {
        "templates_view", "requests_view", "usage_view", "usage_export"}
    assert TABLE["request_approve"] == TABLE["request_reject"] == {BD, SU}
    assert TABLE["partner_assign_bd"] == TABLE["usage_upload"] == {SU}
    assert not any(BD2 in roles or "anonymous" in roles for roles in TABLE.values())


ROLES_DOC = Path(settings.BASE_DIR) / "docs" / "ROLES.md"
TICK, NO = "✓", "—"


def docs_table() -> tuple[list[str], dict[str, tuple[str, str, set[str]]]]:
    """docs/ROLES.md's table: its role columns, and per action (the code in its last
    column) the label, the place and the roles ticked."""
    lines = [line.strip() for line in ROLES_DOC.read_text().splitlines()
             if line.strip().startswith("|")]
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in lines]
    header = cells[0]
    columns = header[2:-1]
    rows = {}
    for row in cells[2:]:
        code = re.fullmatch(r"`(\w+)`", row[-1])
        assert code, f"docs/ROLES.md: a row without its action's code: {row}"
        marks = row[2:-1]
        assert set(marks) <= {TICK, NO}, f"docs/ROLES.md: {row[0]}: marks are ✓ or —"
        ticked = {col for col, mark in zip(columns, marks, strict=True) if mark == TICK}
        rows[code.group(1)] = (row[0], row[1], ticked)
    return columns, rows


def test_the_docs_table_is_the_code_table():
    columns, rows = docs_table()
    assert columns == list(perms.ROLES.values())
    assert list(rows) == list(perms.ACTIONS), "docs/ROLES.md lists the actions in the code's order"
    for action, spec in perms.ACTIONS.items():
        label, where, ticked = rows[action]
        assert (label, where) == (spec.label, spec.where), action
        assert ticked == {perms.ROLES[r] for r in spec.roles}, f"docs/ROLES.md: {label}"


def test_every_partner_page_names_an_action_of_the_table():
    """PartnerMixin lets a role in by its page's action: every partner page of the URLconf
    names one the table has (a page without one answers nobody)."""
    from accounts.mixins import PartnerMixin
    from tests.security import walk

    pages = [e for e in walk.endpoints()
             if e.view_class is not None and issubclass(e.view_class, PartnerMixin)]
    assert len(pages) >= 10
    for endpoint in pages:
        view = endpoint.view_class(**getattr(endpoint.callback, "view_initkwargs", {}))
        assert view.page_action in perms.ACTIONS, endpoint.route
        assert (view.post_action or view.page_action) in perms.ACTIONS, endpoint.route
