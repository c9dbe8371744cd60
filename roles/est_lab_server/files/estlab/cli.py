"""Command line: python3 -m estlab --state-dir DIR [options]."""

import argparse
import logging
import os
import sys

from . import daemon
from .config import ConfigError, load_config_file
from .server import Options, serve

log = logging.getLogger("estlab")


def build_parser():
    parser = argparse.ArgumentParser(prog="estlab", description="Lab EST server (RFC 7030 / RFC 8951) for tests.")
    parser.add_argument("--state-dir", required=True, help="directory holding the CA(s), server certificate and keys")
    parser.add_argument("--bind", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8443, help="TCP port, 0 for any free port (default 8443)")
    parser.add_argument("--http-port", type=int, default=0,
                        help="plain HTTP port of the CRL and OCSP responder named in issued certificates; 0 for any free "
                             "port (default; the ready file says which), -1 for none")
    parser.add_argument("--config", help="JSON configuration file")
    parser.add_argument("--ready-file", help="JSON file written once listening (default STATE_DIR/ready.json)")
    parser.add_argument("--key-type", choices=("ec", "rsa"), default="ec", help="key type of new CAs and server key")
    parser.add_argument("--server-name", action="append", default=[],
                        help="extra DNS name or IP for the server certificate (repeatable)")
    parser.add_argument("--daemon", action="store_true", help="detach; return once the server listens")
    parser.add_argument("--pidfile", help="pid file (default STATE_DIR/estlab.pid with --daemon or --stop)")
    parser.add_argument("--logfile", help="log file with --daemon (default STATE_DIR/estlab.log)")
    parser.add_argument("--stop", action="store_true", help="stop the server named by the pid file and exit")
    parser.add_argument("--status", action="store_true",
                        help="print 'running pid=N' or 'not-running' for the pid file and exit 0")
    parser.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    state_dir = os.path.abspath(args.state_dir)
    pidfile = os.path.abspath(args.pidfile) if args.pidfile else None
    if args.stop or args.status:
        pidfile = pidfile or os.path.join(state_dir, "estlab.pid")
        print(daemon.stop(pidfile) if args.stop else daemon.status(pidfile))
        return 0
    if args.daemon and pidfile is None:
        pidfile = os.path.join(state_dir, "estlab.pid")
    config = {}
    if args.config:
        try:
            config = load_config_file(args.config)
        except ConfigError as exc:
            print("estlab: %s" % exc, file=sys.stderr)
            return 2
    options = Options(state_dir, bind=args.bind, port=args.port, config=config,
                      ready_file=os.path.abspath(args.ready_file) if args.ready_file else None,
                      key_type=args.key_type, server_names=args.server_name, pidfile=pidfile,
                      http_port=args.http_port if args.http_port >= 0 else None)
    notifier = None
    if args.daemon:
        os.makedirs(state_dir, mode=0o700, exist_ok=True)
        notifier = daemon.daemonize(os.path.abspath(args.logfile) if args.logfile else os.path.join(state_dir, "estlab.log"))
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    try:
        return serve(options, on_ready=notifier.ready if notifier else None)
    except (OSError, ValueError, ConfigError) as exc:
        log.error("cannot start: %s", exc)
        if notifier:
            notifier.failed(str(exc))
        return 1
