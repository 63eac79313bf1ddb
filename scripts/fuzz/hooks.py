"""schemathesis hooks for scripts/fuzz_api.sh (loaded with SCHEMATHESIS_HOOKS=hooks).

Four things the spec cannot say for a fuzzer, each narrow:

- tus bodies: `PATCH /api/v1/uploads/{id}` takes `application/offset+octet-stream`, raw
  bytes; schemathesis has no serializer for that media type, so it uses the octet-stream one.
- Keep the fuzzer from locking itself out. A manager may set the password of, or deactivate,
  an inspector of their region (an admin anyone); logged in as those users, the fuzzer would
  sooner or later do it to the very identities it uses, and every later request would fail
  to log in. Such a request aimed at one of them goes to its twin instead (same role and
  region, made by the harness, logged in by nobody): the request is still made and checked.
- Reach the mutations of `POST /api/v1/sync/push`. Its `device_id` must be the device of
  the session (every identity logs in as device `fuzz-device`) and `seq` must continue the
  device's sequence (else 409 `seq_gap` before any mutation runs). A generated body whose
  `device_id` is a string gets `fuzz-device`, and whose `seq`s are all valid is renumbered
  from the next seq of its identity (learnt from the answers), so its mutations run.
  Bodies with invalid `seq`s are sent as generated.
- Leave HTTP/1.1 message framing to the HTTP client. Negative cases add random headers, and
  one named `Transfer-Encoding` or `Content-Length` with a random value makes the request
  an invalid HTTP message: the server's HTTP layer refuses it (400, no body) before any
  route runs, so it says nothing about the API. Those two headers are not sent.
"""
import json
import os
import threading

import schemathesis

DEVICE_ID = "fuzz-device"

schemathesis.serializer.alias("application/offset+octet-stream", "application/octet-stream")

with open(os.environ["XUNCHA_FUZZ_PROTECTED"]) as f:
    _IDS = json.load(f)
_TWIN = {_IDS[name]: _IDS[name + "-twin"] for name in _IDS if not name.endswith("-twin")}

_lock = threading.Lock()
_next_seq = {}  # identity -> the seq its device expects next


def _identity(case):
    return getattr(case, "auth_identity", None) or "?"


def _valid_seq(m):
    return isinstance(m, dict) and type(m.get("seq")) is int and m["seq"] >= 1


FRAMING_HEADERS = {"transfer-encoding", "content-length"}


@schemathesis.hook
def before_call(ctx, case, kwargs):
    for name in [n for n in (case.headers or {}) if n.lower() in FRAMING_HEADERS]:
        del case.headers[name]
    label = case.operation.label
    body = case.body
    if label == "PATCH /api/v1/users/{id}":
        params = case.path_parameters or {}
        twin = _TWIN.get(params.get("id"))
        if twin and isinstance(body, dict) and ("password" in body or body.get("active") is False):
            params["id"] = twin
    elif label == "POST /api/v1/sync/push" and isinstance(body, dict):
        if isinstance(body.get("device_id"), str):
            body["device_id"] = DEVICE_ID
        mutations = body.get("mutations")
        if isinstance(mutations, list) and mutations and all(_valid_seq(m) for m in mutations):
            with _lock:
                start = _next_seq.get(_identity(case), 1)
            for i, m in enumerate(mutations):
                m["seq"] = start + i


@schemathesis.hook
def after_call(ctx, case, response):
    if case.operation.label != "POST /api/v1/sync/push":
        return
    try:
        answer = response.json()
    except ValueError:
        return
    if not isinstance(answer, dict):
        return
    nxt = None
    if response.status_code == 409:
        nxt = (answer.get("error") or {}).get("expected_seq")
    elif response.status_code == 200:
        seqs = [r.get("seq") for r in answer.get("results") or [] if isinstance(r, dict)]
        seqs = [s for s in seqs if type(s) is int]
        if seqs:
            nxt = max(seqs) + 1
    if type(nxt) is int:
        with _lock:
            ident = _identity(case)
            _next_seq[ident] = max(_next_seq.get(ident, 1), nxt)
