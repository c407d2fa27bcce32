"""The partner API v1 (docs/API.md): one NinjaAPI whose every operation needs a bearer
key (api/auth.py) and answers errors in one shape (api/errors.py)."""
from ninja import NinjaAPI

from api import errors
from api.auth import BearerKey
from api.routers import accounts, coupons, requests, templates

api = NinjaAPI(
    title="Coupon Management — Partner API",
    version="1",
    description=(
        "Everything the partner console does, as JSON. Authenticate with "
        "`Authorization: Bearer <key>` (a partner admin makes keys on the console's API "
        "keys page). Amounts are strings with two decimals beside a currency; times are "
        "ISO 8601 with the platform's offset. See docs/API.md."
    ),
    auth=BearerKey(),
    urls_namespace="api-v1",
    openapi_url="/openapi.json",
    docs_url="/docs",
)
errors.install(api)
for module in (accounts, templates, requests, coupons):
    api.add_router("/", module.router)
