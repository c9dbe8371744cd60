# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A fake ``requests`` adapter: canned answers in, captured PreparedRequests out. No sockets."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import io
import os

import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

FIXTURES = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), 'fixtures')


def fixture_path(filename):
    return os.path.join(FIXTURES, filename)


def fixture_bytes(filename):
    with open(fixture_path(filename), 'rb') as handle:
        return handle.read()


class Answer:
    """One canned HTTP answer."""

    def __init__(self, status=200, headers=None, body=b'', raw=None):
        self.status = status
        self.headers = headers or {}
        self.body = body
        self.raw = raw

    @classmethod
    def recorded(cls, filename):
        """An answer recorded as a raw HTTP/1.1 response (status line, headers, blank line, body)."""
        data = fixture_bytes(filename)
        head, _sep, body = data.partition(b'\r\n\r\n')
        lines = head.decode('latin-1').split('\r\n')
        status = int(lines[0].split()[1])
        headers = []
        for line in lines[1:]:
            key, _colon, value = line.partition(':')
            headers.append((key.strip(), value.strip()))
        return cls(status, headers, body)

    def build(self, request):
        response = requests.Response()
        response.status_code = self.status
        response.reason = 'Canned'
        response.headers = CaseInsensitiveDict(self.headers)
        response.raw = self.raw if self.raw is not None else io.BytesIO(self.body)
        response.url = request.url
        response.request = request
        response.encoding = requests.utils.get_encoding_from_headers(response.headers)
        return response


class Sent:
    """What the transport handed to the adapter."""

    def __init__(self, request, stream, timeout, verify, cert, proxies):
        self.request = request
        self.stream = stream
        self.timeout = timeout
        self.verify = verify
        self.cert = cert
        self.proxies = proxies

    @property
    def headers(self):
        return self.request.headers

    @property
    def body(self):
        return self.request.body


class FakeAdapter(BaseAdapter):
    """Answers each request with the next item of ``answers``; the last one repeats.

    An item is an :class:`Answer`, an exception instance (raised from ``send``), or a
    callable taking the PreparedRequest and returning either.
    """

    def __init__(self, *answers):
        super(FakeAdapter, self).__init__()
        self.answers = list(answers)
        self.sent = []

    def send(self, request, stream=False, timeout=None, verify=True, cert=None, proxies=None):
        self.sent.append(Sent(request, stream, timeout, verify, cert, proxies))
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if callable(answer) and not isinstance(answer, Answer):
            answer = answer(request)
        if isinstance(answer, BaseException):
            raise answer
        return answer.build(request)

    def close(self):
        pass


def fake_transport(answers, url='https://est.example.com', **kwargs):
    """An ESTTransport whose https:// traffic goes to a :class:`FakeAdapter`.

    ESTTransport mounts its own TLS adapter on 'https://' while it is built; mounting the fake
    afterwards replaces it, and every other part of the request path (session, auth, environment
    merging, header preparation) stays the real ``requests`` code.
    """
    from unittest import mock
    from ansible_collections.pki.est.plugins.module_utils import transport as transport_module
    if isinstance(answers, (Answer, BaseException)) or callable(answers):
        answers = [answers]
    adapter = FakeAdapter(*answers)
    # The trust file named here is only handed to requests, which never reads it behind a fake adapter.
    with mock.patch.object(transport_module, '_check_trust_file', lambda path: None):
        transport = transport_module.ESTTransport(url, **kwargs)
    transport.session.mount('https://', adapter)
    transport.session.mount('http://', adapter)
    return transport, adapter
