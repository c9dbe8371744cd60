# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Busy servers (503, 429) and the wait budget: retry, jitter, deadline, and what a job reports. No real sleeping."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import datetime
import email.utils
import random

import pytest

from ansible_collections.pki.est.plugins.module_utils import enroll, waiting
from ansible_collections.pki.est.plugins.module_utils.errors import ESTBusy, ESTError, ESTPending
from ansible_collections.pki.est.plugins.module_utils.transport import MAX_RETRY_AFTER
from ansible_collections.pki.est.tests.unit.plugins.module_utils._fakehttp import Answer, fake_transport
from ansible_collections.pki.est.tests.unit.plugins.module_utils.test_enroll import (  # noqa: F401  pylint: disable=unused-import
    CONNECTION, Clock, _options, ca, paths,
)

TEXT = {'Content-Type': 'text/plain; charset=utf-8'}
PKCS7 = {'Content-Type': 'application/pkcs7-mime; smime-type=certs-only'}


def _waiter(wait_timeout, rng=0.0):
    clock = Clock()
    draws = rng if callable(rng) else (lambda: rng)
    return waiting.Waiter(wait_timeout, clock.sleep, clock, draws), clock


def _busy(retry_after, status=503):
    return ESTBusy('busy', retry_after=retry_after, status=status)


def _busy_answer(retry_after='1', status=503):
    headers = dict(TEXT, **({'Retry-After': retry_after} if retry_after is not None else {}))
    return Answer(status, headers, b'try later')


# -- the transport: 503 and 429 are busy, and sent again within the budget -------------------------------

@pytest.mark.parametrize('status', [503, 429])
def test_busy_without_wait_timeout_fails_at_once_with_retry_after(status):
    est, adapter = fake_transport([_busy_answer('30', status), Answer(200, PKCS7, b'')])
    with pytest.raises(ESTError) as info:
        est.get('cacerts')
    error = info.value
    assert (error.kind, error.status) == ('busy', status)
    assert error.details['retry_after'] == 30 and error.as_dict()['retry_after'] == 30
    assert 'HTTP %d' % status in error.message and 'retry after 30 s' in error.message and 'wait_timeout' in error.message
    assert len(adapter.sent) == 1


def test_busy_is_sent_again_after_retry_after_plus_jitter():
    waiter, clock = _waiter(60, rng=0.5)
    est, adapter = fake_transport([_busy_answer('4'), _busy_answer('4', 429), Answer(204, TEXT, b'')], waiter=waiter)
    assert est.get('csrattrs').status == 204
    # 4 s asked, jitter half of it at most: 4 + 0.5 * 2 each time.
    assert clock.sleeps == [5.0, 5.0]
    assert len(adapter.sent) == 3 and est.requests_made == 3
    assert waiter.facts() == {'waited_seconds': 10.0, 'retries': 2}


def test_a_post_is_sent_again_unchanged():
    waiter, _clock = _waiter(60)
    est, adapter = fake_transport([_busy_answer('1'), Answer(200, PKCS7, b'MIIB\n')], waiter=waiter)
    est.post('simpleenroll', b'\x30\x03\x02\x01\x00', 'application/pkcs10')
    first, second = adapter.sent
    assert first.body == second.body and first.headers['Content-Length'] == second.headers['Content-Length']


def test_retry_after_as_http_date():
    waiter, clock = _waiter(300)
    when = email.utils.format_datetime(datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=120), usegmt=True)
    est, _adapter = fake_transport([_busy_answer(when), Answer(204, TEXT, b'')], waiter=waiter)
    est.get('csrattrs')
    assert len(clock.sleeps) == 1 and 118 <= clock.sleeps[0] <= 121


def test_retry_after_date_beyond_the_budget_fails_now():
    waiter, clock = _waiter(60)
    when = email.utils.format_datetime(datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=2), usegmt=True)
    est, adapter = fake_transport([_busy_answer(when), Answer(204, TEXT, b'')], waiter=waiter)
    with pytest.raises(ESTError) as info:
        est.get('csrattrs')
    assert info.value.kind == 'busy' and 7100 <= info.value.details['retry_after'] <= 7200
    assert 'reaches past the 60 s left of wait_timeout=60' in info.value.message
    assert clock.sleeps == [] and len(adapter.sent) == 1


def test_huge_retry_after_is_capped_and_fails_now():
    waiter, clock = _waiter(3600)
    est, _adapter = fake_transport([_busy_answer('9' * 40)], waiter=waiter)
    with pytest.raises(ESTError) as info:
        est.get('cacerts')
    assert info.value.details['retry_after'] == MAX_RETRY_AFTER
    assert clock.sleeps == []


@pytest.mark.parametrize('header', [None, 'soon', '-5', '1.5'])
def test_absent_or_unusable_retry_after_backs_off(header):
    waiter, clock = _waiter(1000)
    est, _adapter = fake_transport([_busy_answer(header)] * 7 + [Answer(204, TEXT, b'')], waiter=waiter)
    est.get('csrattrs')
    assert clock.sleeps == [5, 10, 20, 40, 60, 60, 60]


def test_backoff_starts_anew_after_an_answer():
    waiter, clock = _waiter(1000)
    est, _adapter = fake_transport([_busy_answer(None), _busy_answer(None), Answer(204, TEXT, b''),
                                    _busy_answer(None), Answer(204, TEXT, b'')], waiter=waiter)
    est.get('csrattrs')
    est.get('csrattrs')
    assert clock.sleeps == [5, 10, 5]


def test_other_errors_are_not_retried():
    waiter, clock = _waiter(60)
    est, adapter = fake_transport([Answer(500, TEXT, b'boom'), Answer(204, TEXT, b'')], waiter=waiter)
    with pytest.raises(ESTError) as info:
        est.get('csrattrs')
    assert info.value.kind == 'http' and clock.sleeps == [] and len(adapter.sent) == 1


# -- the Waiter on its own ---------------------------------------------------------------------------

@pytest.mark.parametrize('retry_after, low, high', [(0, 0.2, 1.0), (1, 1, 2), (10, 10, 15), (100, 100, 130), (1000, 1000, 1030)])
def test_jitter_is_bounded_and_never_shortens_the_wait(retry_after, low, high):
    seen = []
    for draw in (0.0, 0.25, 0.999999):
        waiter, clock = _waiter(5000, rng=draw)
        waiter.pause(_busy(retry_after))
        seen.append(clock.sleeps[0])
    assert all(low <= s <= high for s in seen), seen
    assert seen == sorted(seen) and seen[-1] - seen[0] > (high - low) * 0.9


def test_a_fleet_sent_away_together_comes_back_spread_out():
    generator = random.Random(7)
    returns = []
    for _host in range(200):
        waiter, clock = _waiter(60, rng=generator.random)
        waiter.pause(_busy(10))
        returns.append(clock.sleeps[0])
    assert min(returns) >= 10 and max(returns) <= 15
    assert len(set(round(r, 1) for r in returns)) > 40  # not in lockstep
    assert sum(1 for r in returns if r < 12.5) in range(70, 131)  # about evenly spread


def test_never_sleeps_past_the_deadline():
    generator = random.Random(11)
    for _run in range(200):
        budget = generator.randint(1, 100)
        waiter, clock = _waiter(budget, rng=generator.random)
        start = clock.now
        try:
            while True:
                waiter.pause(_busy(generator.choice([None, 0, 1, 3, 7, 20])))
        except ESTError as exc:
            assert exc.kind == 'busy' and exc.details['retries'] == waiter.retries
        assert clock.now - start <= budget + 1e-9
        assert waiter.waited == pytest.approx(clock.now - start)


def test_the_budget_starts_with_the_first_request():
    waiter, clock = _waiter(10)
    clock.now += 100  # planning, key generation: not part of wait_timeout
    waiter.pause(_busy(3))
    assert clock.sleeps == [3]


def test_pending_polls_as_before_without_jitter():
    waiter, clock = _waiter(12, rng=0.9)
    waiter.pause(ESTPending('later', retry_after=10))
    waiter.pause(ESTPending('later', retry_after=10))  # cut to what is left: the last look is worth having
    with pytest.raises(ESTPending):
        waiter.pause(ESTPending('later', retry_after=10))
    assert clock.sleeps == [10, 2] and waiter.facts() == {'waited_seconds': 12.0, 'retries': 2}


def test_pending_and_busy_share_one_budget():
    waiter, clock = _waiter(20)
    waiter.pause(ESTPending('later', retry_after=15))
    with pytest.raises(ESTError) as info:
        waiter.pause(_busy(6))
    assert 'reaches past the 5 s left' in info.value.message and '(waited 15.0 s over 1 retries)' in info.value.message
    assert clock.sleeps == [15]


# -- a whole enrollment job ----------------------------------------------------------------------------

class _Busy:
    """Wraps a transport of the SmallCA: the first ``times`` requests of each transport answer busy."""

    def __init__(self, ca, times, retry_after):
        self.ca, self.times, self.retry_after = ca, times, retry_after
        self.refused = 0

    def factory(self, **connection):
        inner = self.ca.factory(**connection)
        outer = self

        class Transport:
            requests_made = 0
            waiter = None

            def _first(self, call, *args):
                def once():
                    self.requests_made += 1
                    if outer.refused < outer.times:
                        outer.refused += 1
                        raise ESTBusy('busy (HTTP 503)', retry_after=outer.retry_after)
                    return call(*args)
                return self.waiter.call(once)

            def get(self, *args, **kwargs):
                return self._first(lambda: inner.get(*args, **kwargs))

            def post(self, *args, **kwargs):
                return self._first(lambda: inner.post(*args, **kwargs))

        return Transport()


def test_job_waits_and_reports(paths, ca):
    busy = _Busy(ca, 2, 3)
    clock = Clock()
    job = enroll.Enrollment(_options(paths, wait_timeout=60), CONNECTION, transport_factory=busy.factory, sleep=clock.sleep,
                            clock=clock, rng=lambda: 0.0)
    result = job.run()
    assert result['action'] == 'enrolled'
    assert clock.sleeps == [3, 3] and job.waiter.facts() == {'waited_seconds': 6.0, 'retries': 2}
    assert job.requests_made == 3 + ca.operations.count('cacerts')


def test_job_without_wait_timeout_fails_busy_and_writes_nothing(paths, ca):
    busy = _Busy(ca, 1, 30)
    with pytest.raises(ESTError) as info:
        enroll.Enrollment(_options(paths), CONNECTION, transport_factory=busy.factory).run()
    assert info.value.kind == 'busy' and info.value.details['retry_after'] == 30
    assert paths.listing() == []  # no key file, nothing at all


def test_job_renewal_busy_leaves_the_pair_intact(paths, ca):
    enroll.Enrollment(_options(paths), CONNECTION, transport_factory=ca.factory).run()
    before = paths.snapshot()
    busy = _Busy(ca, 1, 30)
    with pytest.raises(ESTError) as info:
        enroll.Enrollment(_options(paths, force=True, rekey=True), CONNECTION, transport_factory=busy.factory).run()
    assert info.value.kind == 'busy'
    assert paths.snapshot() == before
