"""Request numbers of a partner's own (NW-000123): one sequence per partner, taken under
its row lock inside the submit, so two submits at once never get the same number (and
the unique (partner, number) constraint refuses it if they ever did)."""
import re
import unicodedata

from accounts.models import Partner
from approvals.models import RequestNumber, RequestSequence
from coupons.models import IssuanceRequest

PREFIX_LENGTH = 2


def request_prefix(name: str) -> str:
    """A partner's prefix from its name: the initials of its first words ("Northwind
    Distribution" → "ND"), or the first letters of a one-word name; "P" when the name has
    no Latin letter or digit."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    words = re.findall(r"[A-Za-z0-9]+", ascii_name)
    if len(words) >= PREFIX_LENGTH:
        prefix = "".join(w[0] for w in words[:PREFIX_LENGTH])
    else:
        prefix = (words[0] if words else "P")[:PREFIX_LENGTH]
    return prefix.upper()


def _pause(point: str) -> None:
    """Race-test hook: the tests replace it to hold a submit at a named point; does nothing
    here. Points: "sequence_read" (the counter read, not yet written)."""


def request_sequence_lock(partner: Partner) -> RequestSequence:
    """The partner's sequence row, locked; made first if the partner has none. Two first
    submits at once both insert-or-skip (the primary key decides), then both lock it."""
    sequences = RequestSequence.objects.select_for_update(of=("self",))
    sequence = sequences.filter(pk=partner.pk).first()
    if sequence is None:
        RequestSequence.objects.bulk_create(
            [RequestSequence(partner=partner, prefix=request_prefix(partner.name))],
            ignore_conflicts=True,
        )
        sequence = sequences.get(pk=partner.pk)
    return sequence


def request_number_assign(*, request: IssuanceRequest) -> RequestNumber:
    """Give a new request its partner's next number; inside the submit's transaction."""
    sequence = request_sequence_lock(request.partner)
    _pause("sequence_read")
    sequence.last_number += 1
    sequence.save(update_fields=["last_number"])
    number = RequestNumber.objects.create(
        request=request, partner_id=request.partner_id, prefix=sequence.prefix,
        number=sequence.last_number,
    )
    # The request shows its number at once, without reading it back.
    request.partner_number = number
    return number
