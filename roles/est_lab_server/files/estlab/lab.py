"""Test-control endpoints: /healthz and /lab/{requests,config,faults,pending}.

They are plain JSON over the same TLS port, without authentication: this is a
lab server bound to loopback by default.
"""

import json

from .config import ConfigError
from .faults import FaultError
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


ROUTES = {
    "/healthz": {"GET": healthz},
    "/lab/requests": {"GET": get_requests, "DELETE": clear_requests},
    "/lab/config": {"GET": get_config, "POST": post_config},
    "/lab/faults": {"GET": get_faults, "POST": post_faults, "DELETE": clear_faults},
    "/lab/pending": {"GET": get_pending, "DELETE": clear_pending},
}
