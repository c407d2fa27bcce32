"""Temporary re-export while billing's writes move to a module per job; it goes once every
caller imports them from their new module."""
from billing.posting import *  # noqa: F403
from billing.posting import (  # noqa: F401
    _chunks,
    _closed_months,
    _fault,
    _lock_days,
    _post,
)
