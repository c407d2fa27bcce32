import pytest

from tests import factories as f
from tests.api.helpers import Api, make_key


@pytest.fixture
def shop(db):
    """A distributor with a BD, an admin, 5 accounts and a platform-borne template."""
    return f.make_shop(5, prefix="API-")


@pytest.fixture
def operator_key(shop):
    return make_key(shop.partner, shop.admin, "operator")


@pytest.fixture
def reader_key(shop):
    return make_key(shop.partner, shop.admin, "read_only")


@pytest.fixture
def api(operator_key):
    return Api(operator_key[1])


@pytest.fixture
def reader(reader_key):
    return Api(reader_key[1])
