"""A response as the operations build it, before the handler writes it."""

import json


class Response:
    """Status, headers and body of one answer.

    drop=True means: answer nothing and close the connection (the ``close`` fault).
    """

    def __init__(self, status, body=b"", content_type=None, headers=None, drop=False):
        self.status = status
        self.body = body
        self.headers = dict(headers or {})
        if content_type is not None:
            self.headers["Content-Type"] = content_type
        self.drop = drop
        self.fault = None


class HttpError(Exception):
    """Raised by operations to answer with a short plain-text error."""

    def __init__(self, status, reason, headers=None):
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.headers = dict(headers or {})

    def response(self):
        return text(self.status, self.reason, self.headers)


def text(status, message, headers=None):
    return Response(status, (message.rstrip("\n") + "\n").encode("utf-8"), "text/plain; charset=utf-8", headers)


def json_response(status, data):
    return Response(status, (json.dumps(data, indent=1, sort_keys=True) + "\n").encode("utf-8"), "application/json")
