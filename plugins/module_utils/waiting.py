# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Waiting for a server that asks to be asked again: 202 pending (RFC 7030 §4.2.3) and 503/429 busy.

One :class:`Waiter` per job holds the time budget (``wait_timeout``) that every wait of the job
draws from, whatever made it wait: its transports send a request again after a busy answer
(503 Service Unavailable, RFC 9110 §15.6.4; 429 Too Many Requests, RFC 6585 §4) through
:meth:`Waiter.call`, the enrollment polls a pending one through :meth:`Waiter.pause`.

- A pending request is asked about again after its ``Retry-After`` (or 5 s), also when that
  is cut short by the deadline: the request is the server's, the last look is worth having.
- A busy server did nothing with the request. The wait honours its ``Retry-After`` (without
  one: 5 s, doubling up to 60 s) and adds a bounded random jitter on top (half the wait, at
  least 1 s, at most 30 s; never less than asked), so that a fleet sent away together does not
  come back together. When the server asks for more than is left of the budget, the busy
  error is raised at once rather than slept past the deadline.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import random
import time

from .errors import ESTError

DEFAULT_POLL_SECONDS = 5
MAX_BACKOFF_SECONDS = 60
JITTER_FRACTION = 0.5
JITTER_MIN_SECONDS = 1.0
JITTER_MAX_SECONDS = 30.0
# A Retry-After of 0 (or a date in the past) still lets the server breathe.
MIN_WAIT_SECONDS = 0.2


class Waiter:
    """The wait budget of one job and what was spent of it (:attr:`waited`, :attr:`retries`).

    ``sleep``, ``clock`` (monotonic seconds) and ``rng`` (returns a float in [0, 1)) are injectable
    for tests. The budget runs from the first request (:meth:`begin`), not from construction.
    """

    def __init__(self, wait_timeout=0, sleep=time.sleep, clock=time.monotonic, rng=None):
        self.wait_timeout = max(0, wait_timeout or 0)
        self.sleep = sleep
        self.clock = clock
        self.rng = rng or random.random
        self.deadline = None
        self.waited = 0.0
        self.retries = 0
        self._busy_in_a_row = 0

    def begin(self):
        """Start the budget, once."""
        if self.deadline is None:
            self.deadline = self.clock() + self.wait_timeout

    def call(self, send, *args):
        """``send(*args)``, sent again after each busy answer for as long as :meth:`pause` allows."""
        self.begin()
        while True:
            try:
                answer = send(*args)
            except ESTError as exc:
                if exc.kind != 'busy':
                    self._busy_in_a_row = 0
                    raise
                self.pause(exc)
                continue
            self._busy_in_a_row = 0
            return answer

    def pause(self, error):
        """Sleep before the request that got ``error`` (an ``ESTPending`` or a ``busy`` ESTError) is sent again.

        Raises ``error`` when the budget allows no such wait; a busy error then says why in its
        message and carries ``waited_seconds`` and ``retries``.
        """
        self.begin()
        remaining = self.deadline - self.clock()
        retry_after = error.details.get('retry_after')
        if error.kind != 'busy':
            if remaining <= 0:
                raise error
            delay = retry_after if retry_after is not None else DEFAULT_POLL_SECONDS
            self._sleep(max(MIN_WAIT_SECONDS, min(delay, remaining)))
            return
        if remaining <= 0 or (retry_after is not None and retry_after > remaining):
            _explain(error, self, retry_after, remaining)
            raise error
        if retry_after is not None:
            base = retry_after
        else:
            base = min(DEFAULT_POLL_SECONDS * 2 ** self._busy_in_a_row, MAX_BACKOFF_SECONDS)
        self._busy_in_a_row += 1
        spread = min(JITTER_MAX_SECONDS, max(JITTER_MIN_SECONDS, base * JITTER_FRACTION))
        self._sleep(min(max(MIN_WAIT_SECONDS, base + self.rng() * spread), remaining))

    def _sleep(self, seconds):
        self.sleep(seconds)
        self.waited += seconds
        self.retries += 1

    def facts(self):
        """``waited_seconds`` (rounded to 0.1 s) and ``retries``, as the modules and the agent report them."""
        return {'waited_seconds': round(self.waited, 1), 'retries': self.retries}


def _explain(error, waiter, retry_after, remaining):
    """Say in a busy error why there is no (more) waiting; once, as the error may pass several callers."""
    if 'waited_seconds' in error.details:
        return
    if waiter.wait_timeout == 0:
        why = 'no wait_timeout is set, so nothing waits; set wait_timeout to wait and retry'
    elif retry_after is not None and remaining > 0:
        why = 'its Retry-After of %s s reaches past the %.0f s left of wait_timeout=%s' % (retry_after, remaining, waiter.wait_timeout)
    else:
        why = 'wait_timeout=%s is used up' % waiter.wait_timeout
    if waiter.retries:
        why += ' (waited %.1f s over %d retries)' % (waiter.waited, waiter.retries)
    error.message = '%s; %s' % (error.message, why)
    error.args = (error.message,)
    error.details.update(waiter.facts())
