#!/usr/bin/env python
"""Django's command-line entry point for the coupon platform."""
import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "couponplatform.settings")
    from django.core.management import execute_from_command_line

    from couponplatform.env import EnvError

    try:
        execute_from_command_line(sys.argv)
    except EnvError as exc:  # a missing or malformed variable: its message, not a traceback
        sys.exit(f"{sys.argv[1] if len(sys.argv) > 1 else 'manage.py'}: {exc}")
