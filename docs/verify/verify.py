"""Verify rowhook webhooks in Python 3 (standard library only).

Use `verify(secret, headers, body)` in your own endpoint, or run this file as a
small receiver:  WEBHOOK_SECRET=whsec_... PORT=8000 python3 verify.py
"""

import base64
import hashlib
import hmac
import os
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

TOLERANCE = 5 * 60  # seconds: refuse replays of old deliveries


def signing_key(secret: str) -> bytes:
    """whsec_<base64> secrets are base64 keys; any other secret is used as UTF-8 bytes."""
    if secret.startswith("whsec_"):
        return base64.b64decode(secret[len("whsec_"):])
    return secret.encode("utf-8")


def verify(secret: str, headers, body: bytes, now: float | None = None) -> None:
    """Raises ValueError unless the request was signed with `secret`.

    `headers` is a case-insensitive mapping (http.server, Flask, Django's
    request.headers); `body` the raw bytes, exactly as received.
    """
    key = signing_key(secret)
    msg_id = headers.get("webhook-id") or ""
    timestamp = headers.get("webhook-timestamp") or ""
    if not msg_id or not timestamp.isdigit():
        raise ValueError("missing webhook-id or webhook-timestamp")
    now = time.time() if now is None else now
    if abs(now - int(timestamp)) > TOLERANCE:
        raise ValueError("webhook-timestamp is more than 5 minutes away from now")
    # Standard Webhooks: base64 HMAC-SHA256 of "{id}.{timestamp}.{body}"; several
    # space-separated "v1,<sig>" entries while a secret is being rotated.
    signed = f"{msg_id}.{timestamp}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    given = [s[3:] for s in (headers.get("webhook-signature") or "").split() if s.startswith("v1,")]
    if not any(hmac.compare_digest(expected, s) for s in given):
        raise ValueError("webhook-signature does not match")
    # The original PHP app's header: lowercase hex HMAC-SHA256 of the body alone.
    seed = headers.get("x-webhook-signature")
    if seed is not None:
        expected_hex = hmac.new(key, body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected_hex, seed.strip().lower()):
            raise ValueError("X-Webhook-Signature does not match")


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        try:
            verify(os.environ["WEBHOOK_SECRET"], self.headers, body)
        except ValueError as e:
            self.answer(401, f"invalid signature: {e}")
            return
        # Verified. Deduplicate on webhook-id, then handle the event (json.loads(body)).
        self.answer(200, "ok")

    def answer(self, status, text):
        self.send_response(status)
        self.send_header("content-type", "text/plain")
        self.end_headers()
        self.wfile.write(text.encode())


if __name__ == "__main__":
    port = int(os.environ.get("PORT", "8000"))
    print(f"verifying webhooks on http://127.0.0.1:{port}/", flush=True)
    HTTPServer(("127.0.0.1", port), Receiver).serve_forever()
