"""Temporary re-export while billing's writes move to a module per job; it goes once every
caller imports them from their new module."""
from billing.coupon_status import *  # noqa: F403
from billing.daily_bills import *  # noqa: F403
from billing.ledger import Discrepancy, ledger_check  # noqa: F401
from billing.month_close import *  # noqa: F403
from billing.periods import *  # noqa: F403,E402
from billing.posting import *  # noqa: F403
from billing.posting import (  # noqa: F401
    _fault,
    _post,
)
from billing.sweeps import *  # noqa: F403
from billing.usage_import import *  # noqa: F403
