"""The same formats in Simplified Chinese: ISO dates, moments to the minute with the zone,
amounts with two decimals (PRODUCT.md §14), not Django's 2026年12月3日 of zh_Hans."""
from couponplatform.formats.en.formats import (  # noqa: F401
    DATE_FORMAT,
    DATE_INPUT_FORMATS,
    DATETIME_FORMAT,
    DATETIME_INPUT_FORMATS,
    DECIMAL_SEPARATOR,
    SHORT_DATE_FORMAT,
    SHORT_DATETIME_FORMAT,
    THOUSAND_SEPARATOR,
)
