"""How a moment is shown to people: in the platform's time zone (settings.TIME_ZONE), to
the minute, in the one format `DATETIME_FORMAT` of couponplatform/formats ("2026-12-03
20:22 +08"). Pages (the `moment` filter of accounts/templatetags/ui.py and the tables), the
admin's own columns, messages and the audit log's rows all show times through here; the
admin's model fields use the same format by Django's localisation."""
from datetime import datetime

from django.utils import formats, timezone


def moment_text(value: datetime | None, default: str = "—") -> str:
    """An aware datetime as people read it; `default` for none."""
    if value is None:
        return default
    if timezone.is_aware(value):
        value = timezone.localtime(value)
    return formats.date_format(value, "DATETIME_FORMAT")
