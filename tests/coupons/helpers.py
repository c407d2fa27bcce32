"""Helpers of the coupons tests: form data for the pages. ("Nothing written" is in
tests/factories.py.)"""


def template_form_data(**overrides) -> dict:
    """A valid POST of the create form (a relative 30-day cash template); None drops a key."""
    data = {
        "name": "Spring cash",
        "description": "",
        "kind": "cash",
        "currency": "USD",
        "face_value": "50.00",
        "validity_type": "relative",
        "valid_days": "30",
        "all_products": "on",
        "cost_bearer": "partner",
        "issue_limit": "one",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}
