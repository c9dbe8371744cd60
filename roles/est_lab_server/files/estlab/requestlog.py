"""The record of EST requests served, for tests to assert on (GET /lab/requests)."""

import threading
import time

MAX_ENTRIES = 10000


class RequestLog:

    def __init__(self):
        self._lock = threading.Lock()
        self._entries = []

    def add(self, method, path, op, label, status, auth, fault=None):
        entry = {
            "method": method,
            "path": path,
            "op": op,
            "label": label,
            "status": status,
            "auth": auth,
            "time": time.time(),
            "fault": fault,
        }
        with self._lock:
            self._entries.append(entry)
            del self._entries[:-MAX_ENTRIES]

    def entries(self):
        with self._lock:
            return [dict(entry) for entry in self._entries]

    def clear(self):
        with self._lock:
            self._entries.clear()
