"""Maps a request path and method to an operation (RFC 7030 3.2.2 paths)."""

from . import est, fullcmc, lab, serverkeygen
from .response import HttpError

EST_PREFIX = "/.well-known/est/"

EST_OPERATIONS = {
    "cacerts": ("GET", est.cacerts),
    "simpleenroll": ("POST", est.simpleenroll),
    "simplereenroll": ("POST", est.simplereenroll),
    "csrattrs": ("GET", est.csrattrs),
    "serverkeygen": ("POST", serverkeygen.serverkeygen),
    "fullcmc": ("POST", fullcmc.fullcmc),
}


def _method_not_allowed(allowed):
    allow = ", ".join(sorted(allowed))
    return HttpError(405, "method not allowed; use %s" % allow, {"Allow": allow})


def route(state, ctx):
    """Run the operation for ctx; return its Response (or raise HttpError)."""
    if ctx.path in lab.ROUTES:
        methods = lab.ROUTES[ctx.path]
        if ctx.method not in methods:
            raise _method_not_allowed(methods)
        return methods[ctx.method](state, ctx)
    if ctx.path.startswith(EST_PREFIX):
        return _route_est(state, ctx, ctx.path[len(EST_PREFIX):].split("/"))
    raise HttpError(404, "not found")


def _route_est(state, ctx, segments):
    ctx.is_est = True
    if len(segments) == 1:
        label, op = None, segments[0]
    elif len(segments) == 2:
        label, op = segments
    else:
        raise HttpError(404, "not an EST path")
    ctx.op = op[:64]
    ctx.label = label[:64] if label is not None else None
    if op not in EST_OPERATIONS:
        raise HttpError(404, "unknown EST operation")
    ca = state.ca_for_label(label)
    if ca is None:
        raise HttpError(404, "unknown CA label")
    method, operation = EST_OPERATIONS[op]
    if ctx.method != method:
        raise _method_not_allowed([method])
    with state.throttle.admit(ctx):
        return operation(state, ctx, ca)
