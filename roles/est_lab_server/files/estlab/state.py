"""Everything one running server shares between its worker threads."""

import threading

from .ca import CaStore, new_private_key, self_signed_ca, utcnow
from .config import Config
from .faults import FaultTable
from .pending import PendingTracker
from .requestlog import RequestLog
from .throttle import Throttle
from .revocation import Revocations


class LabState:

    def __init__(self, state_dir, key_type, config_values=None):
        self.state_dir = state_dir
        self.key_type = key_type
        self.config = Config(config_values)
        self.cas = CaStore(state_dir, key_type)
        self.requests = RequestLog()
        self.faults = FaultTable()
        self.pending = PendingTracker()
        self.throttle = Throttle(self.config)
        self.revocation = Revocations(self)
        self.started = utcnow()
        self._listeners = []
        self._config_listeners = []
        self._rogue_keys = {}
        self._lock = threading.Lock()
        self._prepare(self.config.snapshot())

    def _prepare(self, snapshot):
        """Create what the configuration needs on disk; return the CAs that are new."""
        added = self.cas.ensure_labels(snapshot["labels"])
        if snapshot["rollover"]:
            for ca in self.cas.all():
                ca.rollover_certs(self.key_type)
        if snapshot["issuing_ca"] == "intermediate":
            for ca in self.cas.all():
                ca.ensure_intermediate()
        if snapshot["fullcmc_signer"] in ("cmc_ra", "ee"):  # made at once, so the files exist before the first answer
            for ca in self.cas.all():
                ca.response_signer(snapshot["fullcmc_signer"])
        return added

    def on_cas_changed(self, listener):
        """Call listener(list_of_CAs) after a config change of "labels" or "issuing_ca".

        The list holds the new CAs and, after a change of issuing_ca, every CA
        that has an intermediate (it may repeat CAs seen before, or be empty).
        """
        self._listeners.append(listener)

    def on_config_changed(self, listener):
        """Call listener(snapshot) after every configuration change through update_config."""
        self._config_listeners.append(listener)

    def update_config(self, changes):
        snapshot = self.config.merge(changes)
        for listener in self._config_listeners:
            listener(snapshot)
        changed = self._prepare(snapshot)
        if "issuing_ca" in changes:
            changed += [ca for ca in self.cas.all() if ca.intermediate is not None and ca not in changed]
        if "labels" in changes or "issuing_ca" in changes:
            for listener in self._listeners:
                listener(changed)
        return snapshot

    def issuer(self, ca):
        """The CA that signs end-entity certificates for the label of ca: ca, or its intermediate (issuing_ca)."""
        if self.config.get("issuing_ca") != "intermediate":
            return ca
        ca.ensure_intermediate()  # normally made by _prepare already
        return ca.intermediate

    def chain_certs(self, ca, issuer):
        """CA certificates besides ca's own that go with certificates of issuer: its intermediate, unless omitted."""
        if issuer is ca or self.config.get("cacerts_omit_intermediate"):
            return []
        return [issuer.cert]

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

        ca is a label's CA or its intermediate; each keeps the same key for the
        whole life of the process.
        """
        with self._lock:
            slot = (ca.label, ca.stem)
            if slot not in self._rogue_keys:
                self._rogue_keys[slot] = new_private_key(self.key_type)
            return ca.cert.subject, self._rogue_keys[slot]

    def rogue_ca_cert(self, ca):
        """Self-signed certificate of the rogue key of ca (what cacerts serves under other_ca)."""
        name, key = self.rogue_signer(ca)
        return self_signed_ca(name, key, days=30)

    def throwaway_ca_cert(self, ca):
        """Self-signed certificate named like ca for a brand-new key (cacerts under wrong_key)."""
        return self_signed_ca(ca.cert.subject, new_private_key(self.key_type), days=30)
