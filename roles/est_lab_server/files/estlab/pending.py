"""Manual-approval simulation (RFC 7030 4.2.3): 202 Accepted + Retry-After.

Requests are matched by the SHA-256 of the CSR's SubjectPublicKeyInfo.  With
``{"after_polls": N}`` the first N requests for a key are answered 202 and the
next one gets the certificate; with ``{"after_seconds": N}`` requests get 202
until N seconds have passed since the key was first seen.  Once a certificate
is issued the key is forgotten, so a later enrollment waits again.

/fullcmc also ``hold``s, next to a waiting entry, what a CMC Query Pending
(RFC 5272 6.13) with the entry's pendToken refers to; a query counts as a
request for the key.  The table lives in memory only: a restart forgets it.
"""

import threading
import time


class PendingTracker:

    def __init__(self):
        self._lock = threading.Lock()
        self._entries = {}
        self._held = {}  # key_id -> (pendToken, value) of /fullcmc

    def approved(self, key_id, policy, now=None):
        """Record one request for key_id; True when it may be answered with a certificate."""
        now = time.time() if now is None else now
        with self._lock:
            if not policy:
                self._forget(key_id)  # pending was switched off while the key waited
                return True
            entry = self._entries.setdefault(key_id, {"first_seen": now, "requests": 0})
            entry["requests"] += 1
            if "after_polls" in policy:
                ready = entry["requests"] > policy["after_polls"]
            else:
                ready = now - entry["first_seen"] >= policy["after_seconds"]
            if ready:
                self._forget(key_id)
            return ready

    def _forget(self, key_id):
        self._entries.pop(key_id, None)
        self._held.pop(key_id, None)

    def hold(self, key_id, token, value):
        """Keep value with the waiting entry of key_id, to be found by held(token) until the entry goes."""
        with self._lock:
            if key_id in self._entries:
                self._held[key_id] = (token, value)

    def held(self, token):
        """(key_id, value) held for token, or None."""
        with self._lock:
            for key_id, (held_token, value) in self._held.items():
                if held_token == token:
                    return key_id, value
        return None

    def snapshot(self):
        with self._lock:
            result = {key: dict(entry) for key, entry in self._entries.items()}
            for key_id, (token, dummy) in self._held.items():
                result[key_id]["pend_token"] = token.hex()
            return result

    def clear(self):
        with self._lock:
            self._entries.clear()
            self._held.clear()
