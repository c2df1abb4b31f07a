"""A real SMTP server for the e-mail channel's tests, listening on 127.0.0.1.

    smtp.py --mode starttls|tls|plain --maildir DIR [--cert PEM --key PEM]
            [--reject-auth N] [--no-auth] [--defer-data N] [--drop-data N]
            [--slow-data N --slow-seconds S] [--size-limit BYTES]

The user name and password it accepts come from the environment (MAD_SMTP_USER,
MAD_SMTP_PASSWORD), so they never show in a process listing. It offers AUTH PLAIN and LOGIN
and requires authentication unless --no-auth is given. --reject-auth N refuses the first N
AUTH attempts whatever the credentials. Recipients whose local part starts with "reject-" get
a permanent 550 reply, those starting with "defer-" a temporary 451.

--defer-data N answers the first N messages with a temporary 451 once their data is in.
--drop-data N cuts the connection in the middle of the first N messages' data, without an
answer. --slow-data N keeps the first N messages but answers each only --slow-seconds later,
as a loaded server does. --size-limit BYTES refuses larger messages with 552 (and advertises
SIZE).

DIR/stats.json counts what happened so far: "connections" (accepted), "rcpt" (RCPT commands
per address, refused ones included), "data" (DATA commands), "deferred" and "dropped".

Each accepted message is saved as DIR/NNNN.eml (the raw bytes received) with DIR/NNNN.json
beside it (envelope sender, envelope recipients, authenticated user, and the number of the
connection it came over). Files appear under their final name only once complete.

Prints "READY <port>" once listening and exits when its standard input closes.
"""

import argparse
import asyncio
import hmac
import json
import logging
import os
import ssl
import sys
import warnings

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


class State:
    def __init__(self, maildir, user, password, args):
        self.maildir = maildir
        self.user = user.encode()
        self.password = password.encode()
        self.reject_auth = args.reject_auth
        self.defer_data = args.defer_data
        self.drop_data = args.drop_data
        self.slow_data = args.slow_data
        self.slow_seconds = args.slow_seconds
        self.saved = 0
        self.connections = 0
        self.stats = {"connections": 0, "rcpt": {}, "data": 0, "deferred": 0, "dropped": 0}

    def count(self, name, key=None):
        if key is None:
            self.stats[name] += 1
        else:
            self.stats[name][key] = self.stats[name].get(key, 0) + 1
        write_atomically(
            os.path.join(self.maildir, "stats.json"), json.dumps(self.stats).encode()
        )

    def authenticate(self, server, session, envelope, mechanism, auth_data):
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        if self.reject_auth > 0:
            self.reject_auth -= 1
            return AuthResult(success=False, handled=False)
        ok = hmac.compare_digest(auth_data.login, self.user) and hmac.compare_digest(
            auth_data.password, self.password
        )
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)


class Handler:
    def __init__(self, state):
        self.state = state

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        self.state.count("rcpt", address)
        local = address.split("@", 1)[0]
        if local.startswith("reject-"):
            return "550 5.1.1 No such mailbox here"
        if local.startswith("defer-"):
            return "451 4.3.0 Mailbox busy, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.state.defer_data > 0:
            self.state.defer_data -= 1
            self.state.count("deferred")
            return "451 4.3.0 Temporary failure, try again later"
        self.state.saved += 1
        stem = os.path.join(self.state.maildir, f"{self.state.saved:04d}")
        auth = session.auth_data
        login = auth.login.decode() if isinstance(auth, LoginPassword) else None
        meta = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "login": login,
            "connection": getattr(server, "mad_connection", None),
        }
        write_atomically(stem + ".json", json.dumps(meta).encode())
        write_atomically(stem + ".eml", envelope.original_content or envelope.content)
        if self.state.slow_data > 0:
            self.state.slow_data -= 1
            await asyncio.sleep(self.state.slow_seconds)
        return "250 Message accepted"


def write_atomically(path, data):
    temp = path + ".part"
    with open(temp, "wb") as f:
        f.write(data)
    os.replace(temp, path)


class Server(SMTP):
    """aiosmtpd's server, able to cut a connection in the middle of a message."""

    def __init__(self, handler, state, **kwargs):
        super().__init__(handler, **kwargs)
        self.state = state

    async def smtp_DATA(self, arg):
        self.state.count("data")
        ready = (
            self.envelope is not None
            and self.envelope.rcpt_tos
            and not arg
            and (self.session.authenticated or not self._auth_required)
        )
        if self.state.drop_data <= 0 or not ready:
            return await super().smtp_DATA(arg)
        self.state.drop_data -= 1
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        received = 0
        while received < 1024:
            line = await self._reader.readline()
            if not line or line == b".\r\n":
                break
            received += len(line)
        self.state.count("dropped")
        self.transport.abort()


def tls_context(args):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(args.cert, args.key)
    return context


async def serve(args):
    state = State(
        args.maildir,
        os.environ.get("MAD_SMTP_USER", ""),
        os.environ.get("MAD_SMTP_PASSWORD", ""),
        args,
    )
    handler = Handler(state)
    context = tls_context(args) if args.mode in ("starttls", "tls") else None

    def protocol():
        state.connections += 1
        state.count("connections")
        smtp = Server(
            handler,
            state,
            data_size_limit=args.size_limit,
            hostname="mad-test-smtp",
            tls_context=context if args.mode == "starttls" else None,
            require_starttls=args.mode == "starttls",
            auth_required=not args.no_auth,
            # With implicit TLS the whole connection is encrypted already.
            auth_require_tls=args.mode == "starttls",
            authenticator=state.authenticate,
        )
        smtp.mad_connection = state.connections
        return smtp

    # aiosmtpd cannot tell that an implicit-TLS socket is encrypted and warns about AUTH
    # without TLS; with --mode tls that warning is wrong.
    warnings.filterwarnings("ignore", message="Requiring AUTH while not requiring TLS")
    logging.getLogger("mail.log").setLevel(logging.ERROR)
    loop = asyncio.get_running_loop()
    implicit = context if args.mode == "tls" else None
    server = await loop.create_server(protocol, host="127.0.0.1", port=0, ssl=implicit)
    port = server.sockets[0].getsockname()[1]
    print(f"READY {port}", flush=True)

    await loop.run_in_executor(None, sys.stdin.buffer.read)
    server.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=["starttls", "tls", "plain"], required=True)
    parser.add_argument("--maildir", required=True)
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--reject-auth", type=int, default=0)
    parser.add_argument("--no-auth", action="store_true")
    parser.add_argument("--defer-data", type=int, default=0)
    parser.add_argument("--drop-data", type=int, default=0)
    parser.add_argument("--slow-data", type=int, default=0)
    parser.add_argument("--slow-seconds", type=float, default=0.0)
    parser.add_argument("--size-limit", type=int, default=33554432)
    args = parser.parse_args()
    if args.mode != "plain" and not (args.cert and args.key):
        parser.error("--cert and --key are needed for starttls and tls")
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
