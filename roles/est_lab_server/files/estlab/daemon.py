"""Running without systemd: detach (double fork), and stop a server by pid file.

The process that ran ``--daemon`` waits until the detached server is listening
(or failed) and exits 0 (or 1), so a caller knows the server is up when it
returns.
"""

import os
import select
import signal
import sys
import time

START_TIMEOUT = 60


class ReadyNotifier:
    """Held by the detached server: tells the waiting parent how start-up went."""

    def __init__(self, fd):
        self._fd = fd

    def _send(self, message):
        if self._fd is None:
            return
        try:
            os.write(self._fd, message.encode("utf-8"))
        except OSError:
            pass
        os.close(self._fd)
        self._fd = None

    def ready(self, info):
        self._send("ok pid=%d url=%s\n" % (info["pid"], info["url"]))

    def failed(self, reason):
        self._send("error: %s\n" % reason)


def _wait_for_child(read_fd, logfile):
    """In the original process: wait for the daemon's message, return the exit code."""
    message = b""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        readable = select.select([read_fd], [], [], max(0.0, deadline - time.monotonic()))[0]
        if not readable:
            break
        chunk = os.read(read_fd, 4096)
        if not chunk:
            break
        message += chunk
    text = message.decode("utf-8", "replace").strip()
    if text.startswith("ok"):
        print("estlab started: %s" % text[3:])
        return 0
    print("estlab failed to start: %s (see %s)" % (text or "no answer from the daemon", logfile), file=sys.stderr)
    return 1


def daemonize(logfile):
    """Detach.  Returns a ReadyNotifier in the daemon; the original process never returns."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid > 0:
        os.close(write_fd)
        os.waitpid(pid, 0)
        os._exit(_wait_for_child(read_fd, logfile))  # pylint: disable=protected-access
    os.close(read_fd)
    os.setsid()
    if os.fork() > 0:
        os._exit(0)  # pylint: disable=protected-access
    os.chdir("/")
    os.umask(0o022)
    sys.stdout.flush()
    sys.stderr.flush()
    devnull = os.open(os.devnull, os.O_RDONLY)
    log_fd = os.open(logfile, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
    os.dup2(devnull, 0)
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    os.close(devnull)
    os.close(log_fd)
    return ReadyNotifier(write_fd)


def read_pid(pidfile):
    try:
        with open(pidfile, encoding="utf-8") as handle:
            return int(handle.read().strip())
    except (OSError, ValueError):
        return None


def is_running_estlab(pid):
    """True when pid is a live (not zombie) process whose command line mentions estlab."""
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as handle:
            cmdline = handle.read()
        with open("/proc/%d/stat" % pid, "rb") as handle:
            stat = handle.read()
    except OSError:
        return False
    process_state = stat.rsplit(b")", 1)[-1].split()[0]
    return b"estlab" in cmdline and process_state not in (b"Z", b"X")


def status(pidfile):
    pid = read_pid(pidfile)
    if pid is not None and is_running_estlab(pid):
        return "running pid=%d" % pid
    return "not-running"


def stop(pidfile, timeout=20.0):
    """SIGTERM the server named by pidfile and wait.  Return a one-word outcome for callers."""
    pid = read_pid(pidfile)
    if pid is None or not is_running_estlab(pid):
        if pid is not None:
            try:
                os.unlink(pidfile)
            except OSError:
                pass
        return "not-running"
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not is_running_estlab(pid):
            return "stopped"
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)
    return "killed"
