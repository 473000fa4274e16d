"""A Python webhook receiver's view of hookline's frozen payloads.

For each payload it does what a receiver does, json.loads of the raw body,
then reads created_at and completed_at with datetime.fromisoformat, and
reports what it got: the strings, their isoformat() round trip, the instant
in microseconds since the epoch and the UTC offset, the keys in order, and
json.dumps of the parsed payload in compact form without ASCII escaping.

stdin:  {"cases": [{"name", "frozen" (base64)}]}
stdout: {"results": [{"name", "keys", "times" {"created_at", "completed_at"},
         "dumps" (base64 of UTF-8), "error"}]}
"""

import base64
import json
import sys
from datetime import datetime, timedelta, timezone

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
ONE_MICROSECOND = timedelta(microseconds=1)


def read_time(value):
    if value is None:
        return None
    dt = datetime.fromisoformat(value)
    offset = dt.utcoffset()
    return {
        "raw": value,
        "iso": dt.isoformat(),
        "unix_us": (dt - EPOCH) // ONE_MICROSECOND if offset is not None else None,
        "utcoffset_s": None if offset is None else offset.total_seconds(),
    }


def receive(frozen: bytes) -> dict:
    payload = json.loads(frozen)
    dumps = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    return {
        "keys": list(payload),
        "times": {k: read_time(payload[k]) for k in ("created_at", "completed_at")},
        "dumps": base64.b64encode(dumps.encode("utf-8")).decode("ascii"),
    }


def main() -> None:
    results = []
    for case in json.loads(sys.stdin.buffer.read())["cases"]:
        try:
            result = receive(base64.b64decode(case["frozen"]))
        except Exception as err:  # report per case; one bad payload must not hide the rest
            result = {"error": f"{type(err).__name__}: {err}"}
        result["name"] = case["name"]
        results.append(result)
    json.dump({"results": results}, sys.stdout)


main()
