"""Simplified Chinese shows dates, moments and amounts as English does (formats/en): ISO
dates, the minute in the platform's time zone, a decimal point and comma groups. Django's
own zh_Hans formats ("2026年6月17日") would make a bill day read differently in each
language, and its input formats would accept dates the English pages refuse. The month
titles (YEAR_MONTH_FORMAT, "2026年6月") stay Django's Chinese."""
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

NUMBER_GROUPING = 3  # Django's zh_Hans groups by 4 (1,0000.00): by 3, as English and the exports
