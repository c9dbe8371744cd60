"""A throttle in front of the EST operations: beyond it, 503 (or 429) with Retry-After.

Configured with the ``throttle`` key (null: off), at start or through ``POST /lab/config``:

- ``max_in_flight``: at most this many EST requests are being served at once;
- ``per_second`` (with ``burst``, default ``max(1, per_second)``): a token bucket, so that on
  average no more than this many EST requests per second are served;
- ``retry_after``: the ``Retry-After`` value sent (seconds; default 1; null: no header);
- ``status``: 503 (RFC 9110 15.6.4, default) or 429 (RFC 6585 4).

A refused request is answered before its body is read or its credentials are checked, as a
proxy or an overloaded server does; it is in the request log with its status and fault
``throttled``. ``GET /lab/throttle`` counts admitted and refused requests and the highest
number in flight (``DELETE`` resets the counts); /lab/* requests are never throttled.
"""

import contextlib
import threading
import time

from .response import HttpError

STATUSES = (429, 503)


def check_throttle(value, error):
    """Raise ``error(message)`` unless value is null or a valid throttle object."""
    if value is None:
        return
    known = {"max_in_flight", "per_second", "burst", "retry_after", "status"}
    if not isinstance(value, dict) or set(value) - known:
        raise error("throttle must be null or an object with keys %s" % ", ".join(sorted(known)))

    def number(key, minimum, integer=False):
        item = value.get(key)
        if item is None:
            return
        kinds = (int,) if integer else (int, float)
        if isinstance(item, bool) or not isinstance(item, kinds) or item < minimum:
            raise error("throttle.%s must be %s >= %s or null" % (key, "an integer" if integer else "a number", minimum))

    number("max_in_flight", 1, integer=True)
    number("per_second", 0.001)
    number("burst", 1)
    number("retry_after", 0, integer=True)
    if value.get("status", 503) not in STATUSES:
        raise error("throttle.status must be 503 or 429")


class Throttle:
    """Admission of EST requests under the configured throttle (read anew for every request)."""

    def __init__(self, config, clock=time.monotonic):
        self._config = config
        self._clock = clock
        self._lock = threading.Lock()
        self._in_flight = 0
        self._tokens = None
        self._last = None
        self._bucket = None  # (per_second, burst) the tokens were counted for
        self._counts = {"admitted": 0, "refused": 0, "peak_in_flight": 0}

    @contextlib.contextmanager
    def admit(self, ctx):
        """Serve the request inside this context, or raise HttpError(503/429) with Retry-After."""
        settings = self._config.get("throttle")
        if settings is None:
            yield
            return
        with self._lock:
            refused = self._refuse(settings)
            if refused:
                self._counts["refused"] += 1
            else:
                self._counts["admitted"] += 1
                self._in_flight += 1
                self._counts["peak_in_flight"] = max(self._counts["peak_in_flight"], self._in_flight)
        if refused:
            ctx.fault = "throttled"
            retry_after = settings.get("retry_after", 1)
            headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
            raise HttpError(settings.get("status", 503), "lab throttle: %s; try again later" % refused, headers)
        try:
            yield
        finally:
            with self._lock:
                self._in_flight -= 1

    def _refuse(self, settings):
        """Why this request is refused now (consuming a token when it is not), or None. Called with the lock held."""
        limit = settings.get("max_in_flight")
        if limit is not None and self._in_flight >= limit:
            return "%d requests in flight (max_in_flight %d)" % (self._in_flight, limit)
        rate = settings.get("per_second")
        if rate is None:
            return None
        burst = settings.get("burst") or max(1.0, rate)
        now = self._clock()
        if self._bucket != (rate, burst):  # new or changed settings start with a full bucket
            self._bucket, self._tokens, self._last = (rate, burst), float(burst), now
        self._tokens = min(float(burst), self._tokens + (now - self._last) * rate)
        self._last = now
        if self._tokens < 1.0:
            return "more than %s requests per second" % rate
        self._tokens -= 1.0
        return None

    def snapshot(self):
        with self._lock:
            counts = dict(self._counts)
            counts["in_flight"] = self._in_flight
            return counts

    def reset(self):
        with self._lock:
            self._counts = {"admitted": 0, "refused": 0, "peak_in_flight": self._in_flight}
