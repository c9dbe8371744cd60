"""Manual-approval simulation (RFC 7030 4.2.3): 202 Accepted + Retry-After.

Requests are matched by the SHA-256 of the CSR's SubjectPublicKeyInfo.  With
``{"after_polls": N}`` the first N requests for a key are answered 202 and the
next one gets the certificate; with ``{"after_seconds": N}`` requests get 202
until N seconds have passed since the key was first seen.  Once a certificate
is issued the key is forgotten, so a later enrollment waits again.
"""

import threading
import time


class PendingTracker:

    def __init__(self):
        self._lock = threading.Lock()
        self._entries = {}

    def approved(self, key_id, policy, now=None):
        """Record one request for key_id; True when it may be answered with a certificate."""
        if not policy:
            return True
        now = time.time() if now is None else now
        with self._lock:
            entry = self._entries.setdefault(key_id, {"first_seen": now, "requests": 0})
            entry["requests"] += 1
            if "after_polls" in policy:
                ready = entry["requests"] > policy["after_polls"]
            else:
                ready = now - entry["first_seen"] >= policy["after_seconds"]
            if ready:
                del self._entries[key_id]
            return ready

    def snapshot(self):
        with self._lock:
            return {key: dict(entry) for key, entry in self._entries.items()}

    def clear(self):
        with self._lock:
            self._entries.clear()
