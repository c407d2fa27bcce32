"""The production settings with the bare pages' URLconf added (bench/load/urls.py): what
the load's gunicorn runs, so the baseline page is served by the same processes as the
pages it is the baseline of. Nothing else differs."""
from couponplatform.settings import *  # noqa: F403

ROOT_URLCONF = "bench.load.urls"
