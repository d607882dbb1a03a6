"""Webhooks from Python: a job submitted with `webhook=` has its end posted there, signed; the
receiver below verifies it as docs/operations.md shows, fails once, then accepts."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from conftest import Foreman, cli
from crowdcompute import Client
from crowdcompute.errors import InvalidRequestError, NotFoundError
from support import wait_until


def serve(receiver: type[BaseHTTPRequestHandler]) -> tuple[ThreadingHTTPServer, str]:
    """A webhook receiver on 127.0.0.1, served from a thread; the server and its /hook URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/hook"


def verify(secret: str, headers: Any, body: bytes) -> bool:
    """Standard Webhooks verification, as a receiver written in Python does it."""
    msg_id, ts, given = headers["webhook-id"], headers["webhook-timestamp"], headers["webhook-signature"]
    if abs(time.time() - int(ts)) > 300:
        return False
    key = base64.b64decode(secret.removeprefix("whsec_"))
    expected = base64.b64encode(hmac.new(key, f"{msg_id}.{ts}.".encode() + body, hashlib.sha256).digest()).decode()
    return any(hmac.compare_digest(sig.split(",", 1)[-1], expected) for sig in given.split(" ") if sig.startswith("v1,"))


def test_a_jobs_end_is_posted_signed_and_retried_until_accepted(start_foreman: Any) -> None:
    foreman: Foreman = start_foreman("--webhook-backoff", "50ms")
    secret = cli("webhook", "secret", "--database", foreman.database).strip()
    got: list[dict[str, Any]] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            body = self.rfile.read(int(self.headers["content-length"]))
            got.append({"signed": verify(secret, self.headers, body), "payload": json.loads(body)})
            self.send_response(503 if len(got) == 1 else 204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server, url = serve(Receiver)
    try:
        with Client(foreman.url) as client:
            # No worker serves it: cancelling ends it, which is what the webhook announces.
            job = client.submit("py.nobody", {}, webhook=url)
            assert client.get_job(job.id)["webhook_url"] == url
            client.cancel_job(job.id)
            view = wait_until(lambda: (v := client.get_job(job.id))["webhook"] and v["webhook"]["state"] == "delivered" and v, 30, "the delivery succeeds")
            assert [a["status"] for a in view["webhook"]["attempt_log"]] == [503, 204]
            assert all(g["signed"] for g in got)
            assert got[-1]["payload"]["event"] == "job.finished"
            assert got[-1]["payload"]["status"] == "cancelled"
            assert got[-1]["payload"]["job"]["id"] == job.id
            with pytest.raises(InvalidRequestError, match="webhook: must be http or https, not ftp:"):
                client.submit("py.nobody", {}, webhook="ftp://example.com/hook")
    finally:
        server.shutdown()


def test_a_key_sets_its_own_webhook_over_rest_and_an_admin_removes_it(start_foreman: Any) -> None:
    foreman: Foreman = start_foreman()
    got: list[str] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            got.append(json.loads(self.rfile.read(int(self.headers["content-length"])))["job"]["id"])
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server, url = serve(Receiver)
    key = cli("key", "create", "--scopes", "submit,read", "--name", "py-hooked", "--database", foreman.database).strip()
    key_id = key.split("_")[1]
    try:
        with Client(foreman.url, api_key=key) as mine, Client(foreman.url) as admin:
            assert mine.get_key(key_id)["webhook_url"] is None
            assert mine.set_key_webhook(key_id, url)["webhook_url"] == url
            job = mine.submit("py.nobody", {})
            mine.cancel_job(job.id)
            wait_until(lambda: got == [job.id], 30, "the key's webhook set over REST is called")
            with pytest.raises(InvalidRequestError, match="url: must be http or https, not ftp:"):
                mine.set_key_webhook(key_id, "ftp://example.com/hook")
            with pytest.raises(NotFoundError, match="CC_ERR_KEY_NOT_FOUND"):
                admin.get_key("nosuchkey")
            removed = admin.remove_key_webhook(key_id)
            assert (removed["id"], removed["scopes"], removed["webhook_url"]) == (key_id, ["submit", "read"], None)
    finally:
        server.shutdown()
