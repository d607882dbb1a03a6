"""Credentials and the worker's hello signature, as docs/protocol.md describes them.

A worker never sends its token: its hello carries an HMAC-SHA256, keyed by the token's
secret, of its worker id, the token id, a timestamp, a random nonce and the host it dialed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass
from typing import Literal, TypedDict
from urllib.parse import urlsplit

from .errors import UnauthorizedError

API_KEY_PREFIX = "cck_"
WORKER_TOKEN_PREFIX = "cct_"
SIGNING_PREFIX = "crowdcompute-hello-v1"

# `cck_<id>_<secret>` / `cct_<id>_<secret>`: the id is 8-32 letters and digits, the secret
# 20-100 characters of the base64url alphabet (it may itself hold underscores).
_CREDENTIAL = re.compile(r"^(cck|cct)_([A-Za-z0-9]{8,32})_([A-Za-z0-9_-]{20,100})$")


@dataclass(frozen=True)
class CredentialParts:
    """An API key's or worker token's parts."""

    kind: Literal["key", "token"]
    #: Public: names the credential in lists, logs and the store.
    id: str
    #: Private: never sent (a worker signs with it).
    secret: str


class HelloAuth(TypedDict):
    tokenId: str
    timestamp: int
    nonce: str
    signature: str


def parse_credential(text: str) -> CredentialParts | None:
    """Split an API key or worker token into its parts; None when it has neither shape."""
    m = _CREDENTIAL.match(text.strip())
    if not m:
        return None
    return CredentialParts("key" if m.group(1) == "cck" else "token", m.group(2), m.group(3))


def check_worker_token(token: str) -> CredentialParts:
    """The token's parts, or an error naming the expected shape (a typo fails at construction)."""
    parts = parse_credential(token)
    if parts is None or parts.kind != "token":
        raise UnauthorizedError(
            "CC_ERR_UNAUTHORIZED",
            "a worker token looks like cct_<id>_<secret> (crowdcompute token create --worker <id> prints one)",
        )
    return parts


def signing_text(worker_id: str, token_id: str, timestamp: int, nonce: str, host: str) -> str:
    """What a worker signs: six lines joined by newlines, the host lowercased."""
    return "\n".join([SIGNING_PREFIX, worker_id, token_id, str(timestamp), nonce, host.lower()])


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def hello_signature(secret: str, text: str) -> str:
    """base64url (no padding) of HMAC-SHA256(key=secret, text), both UTF-8."""
    return _b64url(hmac.new(secret.encode(), text.encode(), hashlib.sha256).digest())


def dialed_host(url: str) -> str:
    """The `Host` a WebSocket upgrade to `url` carries: hostname and port as written, lowercased.

    A default port (80 for ws, 443 for wss) is left out, as clients leave it out of `Host`.
    """
    u = urlsplit(url)
    host = (u.hostname or "").lower()
    if ":" in host:  # an IPv6 literal keeps its brackets
        host = f"[{host}]"
    default = 443 if u.scheme in ("wss", "https") else 80
    if u.port is not None and u.port != default:
        host = f"{host}:{u.port}"
    return host


def sign_hello(token: str, worker_id: str, host: str, *, timestamp: int | None = None, nonce: str | None = None) -> HelloAuth:
    """A hello's `auth` for `worker_id` dialing `host`, signed with `token`'s secret."""
    parts = check_worker_token(token)
    ts = int(time.time() * 1000) if timestamp is None else timestamp
    n = nonce if nonce is not None else _b64url(secrets.token_bytes(18))
    text = signing_text(worker_id, parts.id, ts, n, host)
    return {"tokenId": parts.id, "timestamp": ts, "nonce": n, "signature": hello_signature(parts.secret, text)}
