"""Keep the lab server's throttle full, so that a test meets a busy server at a moment it chooses.

    lab.set_config(throttle={"max_in_flight": 1, "retry_after": 1}, socket_timeout=120)
    with held_slots(lab, 1, release_after_refusals=2):
        ...  # EST requests get 503 until the lab has refused two of them, then the slot is free

Each held slot is a real TLS connection that sends the head of a ``POST simpleenroll`` with a
``Content-Length`` and then no body: the throttle admits it, and the operation waits for the
body (up to the lab's ``socket_timeout``, so raise that) while it counts as in flight. Closing
the connection ends it (the lab logs a cut-off request and serves nothing). Waiting for the
lab's own count of refusals, instead of sleeping, keeps the tests independent of how fast
ansible-playbook starts on a loaded machine.
"""

import contextlib
import socket
import ssl
import threading
import time
from urllib.parse import urlsplit

SETTLE_TIMEOUT = 10.0


def _open_slot(lab):
    parts = urlsplit(lab.url)
    context = ssl.create_default_context(cafile=lab.ca_path)
    raw = socket.create_connection((parts.hostname, parts.port), timeout=10)
    conn = context.wrap_socket(raw, server_hostname=parts.hostname)
    head = ("POST /.well-known/est/simpleenroll HTTP/1.1\r\nHost: %s\r\nContent-Type: application/pkcs10\r\n"
            "Content-Length: 1000\r\n\r\n" % parts.netloc)
    conn.sendall(head.encode("ascii"))
    return conn


def _wait_for(lab, test, what):
    deadline = time.monotonic() + SETTLE_TIMEOUT
    while time.monotonic() < deadline:
        stats = lab.throttle_stats()
        if test(stats):
            return stats
        time.sleep(0.05)
    raise AssertionError("the lab throttle never reached %s: %s" % (what, lab.throttle_stats()))


@contextlib.contextmanager
def held_slots(lab, count=1, release_after_refusals=None):
    """Hold ``count`` throttle slots; free them once the lab has refused ``release_after_refusals``
    requests since they were taken (None: at the end of the block)."""
    before = lab.throttle_stats()
    slots = [_open_slot(lab) for _slot in range(count)]
    _wait_for(lab, lambda stats: stats["in_flight"] >= count, "%d requests in flight" % count)
    done = threading.Event()

    def release():
        for slot in slots:
            try:
                slot.close()
            except OSError:
                pass

    def watch():
        target = before["refused"] + release_after_refusals
        while not done.is_set():
            if lab.throttle_stats()["refused"] >= target:
                release()
                return
            done.wait(0.05)

    watcher = None
    if release_after_refusals is not None:
        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
    try:
        yield slots
    finally:
        done.set()
        if watcher is not None:
            watcher.join(timeout=5)
        release()
        _wait_for(lab, lambda stats: stats["in_flight"] == 0, "no request in flight")
