"""A Python receiver for the classic hex scheme, written from the algorithm
alone: hmac.compare_digest(hmac.new(secret, body, hashlib.sha256).hexdigest(),
header), the secret string's UTF-8 bytes as the key.

stdin:  {"cases": [{"name", "prefix", "body" (base64), "headers",
         "secrets" [...]}]}
stdout: {"results": [{"name", "ok" [one bool per secret]}]}
"""

import base64
import hashlib
import hmac
import json
import sys


def verify(secret: str, body: bytes, signature: str) -> bool:
    expected = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature)


def main() -> None:
    cases = json.loads(sys.stdin.buffer.read())["cases"]
    results = []
    for c in cases:
        # HTTP header names are case-insensitive; look them up in lower case.
        headers = {k.lower(): v for k, v in c["headers"].items()}
        signature = headers.get(c["prefix"].lower() + "-signature", "")
        body = base64.b64decode(c["body"] or "")
        results.append({"name": c["name"], "ok": [verify(s, body, signature) for s in c["secrets"]]})
    json.dump({"results": results}, sys.stdout)


main()
