"""Fixtures of the billing tests. Every test that touches the database ends with the ledger
check: 0 discrepancies, unless the test breaks a row on purpose (`ledger_broken`)."""
import pytest

from billing.ledger import ledger_check


@pytest.fixture
def ledger_broken(request):
    """For a test that breaks the ledger on purpose: skip the closing ledger check."""
    request.node.ledger_broken = True


@pytest.fixture(autouse=True)
def _ledger_clean_after(request):
    names = request.fixturenames
    if "transactional_db" in names:
        request.getfixturevalue("transactional_db")
    elif "db" in names:
        # Taken here so the database outlives this fixture's closing check.
        request.getfixturevalue("db")
    else:
        yield
        return
    yield
    if getattr(request.node, "ledger_broken", False):
        return
    found = ledger_check()
    assert not found, "ledger discrepancies:\n" + "\n".join(map(str, found))


# The page tests' shared world (tests/billing/page_helpers.py): built once per test class,
# its rows refreshed for each test.
@pytest.fixture(scope="class")
def class_world(django_db_setup, django_db_blocker):
    from tests.billing import page_helpers as ph

    with ph.shared_world(django_db_blocker) as shared:
        yield shared


@pytest.fixture
def world(class_world, db):
    class_world.refresh()
    return class_world
