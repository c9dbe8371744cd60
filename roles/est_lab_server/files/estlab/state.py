"""Everything one running server shares between its worker threads."""

import threading

from .ca import CaStore, new_private_key, self_signed_ca, utcnow
from .config import Config
from .faults import FaultTable
from .pending import PendingTracker
from .requestlog import RequestLog


class LabState:

    def __init__(self, state_dir, key_type, config_values=None):
        self.state_dir = state_dir
        self.key_type = key_type
        self.config = Config(config_values)
        self.cas = CaStore(state_dir, key_type)
        self.requests = RequestLog()
        self.faults = FaultTable()
        self.pending = PendingTracker()
        self.started = utcnow()
        self._listeners = []
        self._rogue_keys = {}
        self._lock = threading.Lock()
        self._prepare(self.config.snapshot())

    def _prepare(self, snapshot):
        """Create what the configuration needs on disk; return the CAs that are new."""
        added = self.cas.ensure_labels(snapshot["labels"])
        if snapshot["rollover"]:
            for ca in self.cas.all():
                ca.rollover_certs(self.key_type)
        return added

    def on_labels_changed(self, listener):
        """Call listener(list_of_new_CAs) after a config change of "labels" (the list may be empty)."""
        self._listeners.append(listener)

    def update_config(self, changes):
        snapshot = self.config.merge(changes)
        added = self._prepare(snapshot)
        if "labels" in changes:
            for listener in self._listeners:
                listener(added)
        return snapshot

    def labelled_cas(self):
        """{label: CA} for the labels currently configured."""
        known = self.cas.labels()
        return {label: known[label] for label in self.config.get("labels") if label in known}

    def ca_for_label(self, label):
        """The CA serving a path label (None: the default CA); None when the label is not configured."""
        if label is None:
            return self.cas.default
        if label not in self.config.get("labels"):
            return None
        return self.cas.get(label)

    def rogue_signer(self, ca):
        """(name, key) of a CA that is not in /cacerts but has the same name as ca (other_ca fault).

        The same key is used for the whole life of the process.
        """
        with self._lock:
            if ca.label not in self._rogue_keys:
                self._rogue_keys[ca.label] = new_private_key(self.key_type)
            return ca.cert.subject, self._rogue_keys[ca.label]

    def rogue_ca_cert(self, ca):
        """Self-signed certificate of the rogue key of ca (what cacerts serves under other_ca)."""
        name, key = self.rogue_signer(ca)
        return self_signed_ca(name, key, days=30)

    def throwaway_ca_cert(self, ca):
        """Self-signed certificate named like ca for a brand-new key (cacerts under wrong_key)."""
        return self_signed_ca(ca.cert.subject, new_private_key(self.key_type), days=30)
