"""ISO dates everywhere: bills and validity are read across time zones and locales.

A moment is shown to the minute, always in the platform's time zone, with that zone's
abbreviation (for Asia/Singapore its offset): "2026-12-03 20:22 +08"
(couponplatform/times.py). The suffix says which zone the minute is counted in."""
DATE_FORMAT = "Y-m-d"
SHORT_DATE_FORMAT = "Y-m-d"
DATETIME_FORMAT = "Y-m-d H:i T"
SHORT_DATETIME_FORMAT = DATETIME_FORMAT
DATE_INPUT_FORMATS = ["%Y-%m-%d"]
DATETIME_INPUT_FORMATS = ["%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M"]
DECIMAL_SEPARATOR = "."
THOUSAND_SEPARATOR = ","
