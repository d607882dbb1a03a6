"""The hello signature, checked against the test vector docs/protocol.md gives."""

import pytest

from crowdcompute.auth import dialed_host, parse_credential, sign_hello, signing_text
from crowdcompute.errors import UnauthorizedError

# The vector in docs/protocol.md ("Authentication"); the TypeScript suite checks the same one.
VECTOR = {
    "token": "cct_abcdEFGH1234_secretSECRETsecret0123456789",
    "worker_id": "math-worker-001",
    "host": "Foreman.Example.com:8000",
    "timestamp": 1767225600000,
    "nonce": "bm9uY2Utb25jZS0xMjM0",
    "signature": "SLWQfpQKMkHNHbOGc3smxwDWoHyAassLF5cPrT5fv7k",
}


def test_signing_vector() -> None:
    v = VECTOR
    auth = sign_hello(v["token"], v["worker_id"], v["host"], timestamp=v["timestamp"], nonce=v["nonce"])
    assert auth == {"tokenId": "abcdEFGH1234", "timestamp": v["timestamp"], "nonce": v["nonce"], "signature": v["signature"]}


def test_signing_text_lowercases_the_host() -> None:
    text = signing_text("w", "abcdEFGH1234", 1, "n" * 16, "HOST:80")
    assert text == "crowdcompute-hello-v1\nw\nabcdEFGH1234\n1\nnnnnnnnnnnnnnnnn\nhost:80"


def test_token_split_keeps_underscores_in_the_secret() -> None:
    parts = parse_credential("cct_abcdEFGH1234_se_cr_et-0123456789abcdef")
    assert parts is not None and parts.id == "abcdEFGH1234" and parts.secret == "se_cr_et-0123456789abcdef"
    assert parse_credential("cck_short_x") is None


def test_a_malformed_token_is_refused_naming_the_shape() -> None:
    with pytest.raises(UnauthorizedError, match="cct_<id>_<secret>"):
        sign_hello("not-a-token", "w", "h")


def test_dialed_host_carries_the_port_unless_default() -> None:
    assert dialed_host("ws://LocalHost:8000/ws") == "localhost:8000"
    assert dialed_host("ws://example.com/ws") == "example.com"
    assert dialed_host("wss://example.com:443/ws") == "example.com"
    assert dialed_host("ws://[::1]:9000/ws") == "[::1]:9000"
