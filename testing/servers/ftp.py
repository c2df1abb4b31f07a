"""An FTP server for the tests: plain FTP or explicit FTPS (AUTH TLS), one user whose name and
password come from the environment (MAD_FTP_USER, MAD_FTP_PASSWORD), files in --root.

Prints "READY <port>" once listening on 127.0.0.1 and exits when its standard input closes.

--drop-data-after N cuts the data connection of the first --drop-count uploads (STOR) after
N bytes, as a failing network would, leaving the partial file behind.
--reject-logins N refuses the first N logins (530) whatever the credentials.
--events FILE appends one line per event ("connect", "login") so tests can count them.
"""

import argparse
import logging
import os
import socket
import struct
import sys
import threading

from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.exceptions import AuthenticationFailed
from pyftpdlib.handlers import DTPHandler, FTPHandler
from pyftpdlib.servers import FTPServer


def parse_args():
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", choices=["plain", "explicit_tls"], default="plain")
    parser.add_argument("--root", required=True)
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--drop-data-after", type=int, default=0)
    parser.add_argument("--drop-count", type=int, default=0)
    parser.add_argument("--reject-logins", type=int, default=0)
    parser.add_argument("--events")
    return parser.parse_args()


def main():
    args = parse_args()
    logging.basicConfig(level=logging.WARNING)
    user = os.environ["MAD_FTP_USER"]
    password = os.environ["MAD_FTP_PASSWORD"]

    rejections = {"left": args.reject_logins}

    class Authorizer(DummyAuthorizer):
        def validate_authentication(self, username, password, handler):
            if rejections["left"] > 0:
                rejections["left"] -= 1
                raise AuthenticationFailed("Authentication failed.")
            super().validate_authentication(username, password, handler)

    authorizer = Authorizer()
    authorizer.add_user(user, password, args.root, perm="elradfmwMT")

    drops = {"left": args.drop_count}

    def record(event):
        if args.events:
            with open(args.events, "a", encoding="utf-8") as f:
                f.write(event + "\n")

    if args.mode == "explicit_tls":
        from pyftpdlib.handlers import TLS_DTPHandler, TLS_FTPHandler

        base_handler, base_dtp = TLS_FTPHandler, TLS_DTPHandler
    else:
        base_handler, base_dtp = FTPHandler, DTPHandler

    class CuttingDTP(base_dtp):
        """Drops the connection part-way through an upload while drops are left."""

        def handle_read_event(self):
            super().handle_read_event()
            if (
                not self._closed
                and self.receive
                and drops["left"] > 0
                and args.drop_data_after > 0
                and self.tot_bytes_received >= args.drop_data_after
            ):
                drops["left"] -= 1
                self._resp = ("426 Connection lost; transfer aborted.", lambda *a: None)
                try:
                    # Linger 0: the client sees a reset, not an orderly end of data.
                    self.socket.setsockopt(
                        socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                    )
                except OSError:
                    pass
                self.close()

    class Handler(base_handler):
        dtp_handler = CuttingDTP

        def on_connect(self):
            record("connect")

        def on_login(self, username):
            record("login")

    Handler.authorizer = authorizer
    Handler.banner = "mad test FTP server"
    Handler.passive_ports = None
    if args.mode == "explicit_tls":
        Handler.certfile = args.cert
        Handler.keyfile = args.key
        Handler.tls_control_required = True
        Handler.tls_data_required = True

    server = FTPServer(("127.0.0.1", 0), Handler)
    port = server.socket.getsockname()[1]
    print(f"READY {port}", flush=True)

    def watch_stdin():
        sys.stdin.read()
        os._exit(0)

    threading.Thread(target=watch_stdin, daemon=True).start()
    server.serve_forever(handle_exit=False)


if __name__ == "__main__":
    main()
