"""Test-control endpoints: /healthz and /lab/{requests,config,faults,pending,revoke,revocation}.

They are plain JSON over the same TLS port, without authentication: this is a
lab server bound to loopback by default.
"""

import json

from .config import ConfigError
from .faults import FaultError
from .revocation import RevocationError
from .response import HttpError, json_response

# Lab requests have their own cap: max_body_bytes is about EST requests and may
# be set very low by a test, which must still be able to change it back.
LAB_MAX_BODY = 1024 * 1024


def _json_body(ctx):
    body = ctx.read_body(LAB_MAX_BODY)
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise HttpError(400, "body is not valid JSON") from exc


def healthz(state, ctx):
    del state, ctx
    return json_response(200, {"status": "ok"})


def get_requests(state, ctx):
    del ctx
    return json_response(200, state.requests.entries())


def clear_requests(state, ctx):
    del ctx
    state.requests.clear()
    return json_response(200, {"status": "cleared"})


def get_config(state, ctx):
    del ctx
    return json_response(200, state.config.snapshot())


def post_config(state, ctx):
    changes = _json_body(ctx)
    try:
        return json_response(200, state.update_config(changes))
    except ConfigError as exc:
        raise HttpError(400, str(exc)) from exc


def get_faults(state, ctx):
    del ctx
    return json_response(200, state.faults.snapshot())


def post_faults(state, ctx):
    request = _json_body(ctx)
    if not isinstance(request, dict) or set(request) - {"op", "fault", "count"}:
        raise HttpError(400, 'expected {"op": ..., "fault": ..., "count": N or null}')
    try:
        state.faults.set(request.get("op"), request.get("fault"), request.get("count"))
    except FaultError as exc:
        raise HttpError(400, str(exc)) from exc
    return json_response(200, state.faults.snapshot())


def clear_faults(state, ctx):
    del ctx
    state.faults.clear()
    return json_response(200, {})


def get_pending(state, ctx):
    del ctx
    return json_response(200, state.pending.snapshot())


def clear_pending(state, ctx):
    del ctx
    state.pending.clear()
    return json_response(200, {})


def get_throttle(state, ctx):
    del ctx
    return json_response(200, state.throttle.snapshot())


def clear_throttle(state, ctx):
    del ctx
    state.throttle.reset()
    return json_response(200, state.throttle.snapshot())


def post_revoke(state, ctx):
    """{"serial": N or "0x..", "reason": "keyCompromise"}: revoke a certificate this server issued; its CRL is re-issued."""
    request = _json_body(ctx)
    if not isinstance(request, dict) or "serial" not in request or set(request) - {"serial", "reason"}:
        raise HttpError(400, 'expected {"serial": ..., "reason": ...}')
    try:
        return json_response(200, state.revocation.revoke(request["serial"], request.get("reason") or "unspecified"))
    except RevocationError as exc:
        raise HttpError(400, str(exc)) from exc


def get_revocation(state, ctx):
    del ctx
    return json_response(200, state.revocation.snapshot())


def post_revocation_faults(state, ctx):
    request = _json_body(ctx)
    if not isinstance(request, dict) or set(request) - {"target", "fault", "count"}:
        raise HttpError(400, 'expected {"target": "crl" or "ocsp", "fault": ... or null, "count": N or null}')
    try:
        state.revocation.set_fault(request.get("target"), request.get("fault"), request.get("count"))
    except RevocationError as exc:
        raise HttpError(400, str(exc)) from exc
    return json_response(200, state.revocation.snapshot())


ROUTES = {
    "/healthz": {"GET": healthz},
    "/lab/requests": {"GET": get_requests, "DELETE": clear_requests},
    "/lab/config": {"GET": get_config, "POST": post_config},
    "/lab/faults": {"GET": get_faults, "POST": post_faults, "DELETE": clear_faults},
    "/lab/pending": {"GET": get_pending, "DELETE": clear_pending},
    "/lab/throttle": {"GET": get_throttle, "DELETE": clear_throttle},
    "/lab/revoke": {"POST": post_revoke},
    "/lab/revocation": {"GET": get_revocation},
    "/lab/revocation/faults": {"POST": post_revocation_faults},
}
