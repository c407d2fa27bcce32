"""Webhook secrets kept sealed in the database: the platform signs every delivery with an
endpoint's secret, so the secret must be recoverable (an API key is kept as a hash; this
can not be). Sealed with keys derived from SECRET_KEY, so a copy of the database alone
(a backup, a replica, a dump) does not give away the secrets that sign partners' events.

The construction uses the standard library only (the pinned requirements have no
`cryptography`): HMAC-SHA256 as a pseudo-random function in counter mode for the
keystream, and encrypt-then-MAC with HMAC-SHA256 over the version, nonce and ciphertext,
with independent encryption and MAC keys. SECRET_KEY_FALLBACKS are tried when opening, so
rotating SECRET_KEY the Django way keeps existing endpoints working (docs/API.md).
"""
import base64
import hashlib
import hmac
import secrets

from django.conf import settings

VERSION = "v1"
_NONCE = 16
_TAG = 32


class SecretBoxError(Exception):
    """The box was not sealed with this SECRET_KEY (or its fallbacks), or was altered."""


def _keys(secret_key: str) -> tuple[bytes, bytes]:
    root = hmac.new(secret_key.encode(), b"couponplatform.api.webhook-secret",
                    hashlib.sha256).digest()
    return (hmac.new(root, b"encrypt", hashlib.sha256).digest(),
            hmac.new(root, b"authenticate", hashlib.sha256).digest())


def _keystream(key: bytes, nonce: bytes, length: int) -> bytes:
    blocks = (hmac.new(key, nonce + n.to_bytes(4, "big"), hashlib.sha256).digest()
              for n in range((length + 31) // 32))
    return b"".join(blocks)[:length]


def _xor(data: bytes, stream: bytes) -> bytes:
    return bytes(a ^ b for a, b in zip(data, stream, strict=True))


def _tag(mac_key: bytes, nonce: bytes, ciphertext: bytes) -> bytes:
    return hmac.new(mac_key, VERSION.encode() + nonce + ciphertext, hashlib.sha256).digest()


def seal(plain: str) -> str:
    enc_key, mac_key = _keys(settings.SECRET_KEY)
    nonce = secrets.token_bytes(_NONCE)
    data = plain.encode()
    ciphertext = _xor(data, _keystream(enc_key, nonce, len(data)))
    packed = nonce + ciphertext + _tag(mac_key, nonce, ciphertext)
    return f"{VERSION}:{base64.urlsafe_b64encode(packed).decode()}"


def unseal(box: str) -> str:
    version, _, payload = (box or "").partition(":")
    try:
        packed = base64.urlsafe_b64decode(payload.encode())
    except ValueError as exc:
        raise SecretBoxError("The sealed secret is not readable.") from exc
    if version != VERSION or len(packed) < _NONCE + _TAG:
        raise SecretBoxError("The sealed secret is not readable.")
    nonce, ciphertext, tag = packed[:_NONCE], packed[_NONCE:-_TAG], packed[-_TAG:]
    for secret_key in [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]:
        enc_key, mac_key = _keys(secret_key)
        if hmac.compare_digest(tag, _tag(mac_key, nonce, ciphertext)):
            return _xor(ciphertext, _keystream(enc_key, nonce, len(ciphertext))).decode()
    raise SecretBoxError("The sealed secret was not sealed with this SECRET_KEY.")
