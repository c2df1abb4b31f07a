"""A real S3 server for the S3 and hub channels' tests: moto in server mode on 127.0.0.1,
behind a small proxy that can misbehave on request.

    s3.py --bucket NAME [--bucket NAME ...]

The access key id and secret key it accepts come from the environment (MAD_S3_ACCESS_KEY_ID,
MAD_S3_SECRET_ACCESS_KEY), so they never show in a process listing. Every request must be
signed with them (moto's IAM checks are on); the buckets exist from the start.

Prints "READY <port>" (the proxy's port) once listening and exits when its standard input
closes. Until then it reads one command per line from standard input and answers each with
one line of JSON on standard output:

    LIST <bucket>              every object, read back with boto3 (an S3 client independent
                               of the channel): key, size, sha256 of the bytes, the bytes as
                               hex, content type, server-side encryption, user metadata
    DROP <count> [<skip>]      after letting <skip> PUTs through, cut the next <count> PUTs
                               off halfway through their body (connection reset; nothing
                               reaches moto)
    THROTTLE <count> <seconds> answer the next <count> PUTs with 429 and Retry-After
    STATS                      how many PUTs were forwarded, dropped and throttled
"""

import argparse
import hashlib
import json
import logging
import os
import socket
import struct
import sys
import threading

import boto3
from botocore.config import Config
from moto import settings
from moto.core import DEFAULT_ACCOUNT_ID
from moto.iam.models import iam_backends
from moto.server import ThreadedMotoServer

USER = "mad-test"
POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
}


class Faults:
    def __init__(self):
        self.lock = threading.Lock()
        self.skip = 0
        self.drop = 0
        self.throttle = 0
        self.retry_after = 0
        self.forwarded = 0
        self.dropped = 0
        self.throttled = 0

    def decide(self, method, length):
        """What to do with a request: "forward", "drop" or "throttle"."""
        with self.lock:
            if method != "PUT":
                return "forward"
            if self.throttle > 0:
                self.throttle -= 1
                self.throttled += 1
                return "throttle"
            if self.drop > 0 and length > 0:
                if self.skip > 0:
                    self.skip -= 1
                else:
                    self.drop -= 1
                    self.dropped += 1
                    return "drop"
            self.forwarded += 1
            return "forward"


class Connection:
    """Buffered reads from a socket."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def fill(self):
        data = self.sock.recv(65536)
        if not data:
            return False
        self.buf += data
        return True

    def head(self):
        while b"\r\n\r\n" not in self.buf:
            if not self.fill():
                return None
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        return head + b"\r\n\r\n"

    def exact(self, n):
        while len(self.buf) < n:
            if not self.fill():
                raise ConnectionError("closed in the middle of a body")
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def line(self):
        while b"\r\n" not in self.buf:
            if not self.fill():
                raise ConnectionError("closed in the middle of a chunk")
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line + b"\r\n"

    def rest(self):
        while self.fill():
            pass
        data, self.buf = self.buf, b""
        return data


def headers_of(head):
    lines = head.decode("latin-1").split("\r\n")
    fields = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            fields[name.strip().lower()] = value.strip()
    return lines[0], fields


def read_body(conn, fields, no_body=False):
    if no_body:
        return b""
    if "chunked" in fields.get("transfer-encoding", "").lower():
        out = b""
        while True:
            size_line = conn.line()
            out += size_line
            size = int(size_line.split(b";")[0].strip(), 16)
            out += conn.exact(size + 2)
            if size == 0:
                return out
    if "content-length" in fields:
        return conn.exact(int(fields["content-length"]))
    return None


def strip_expect(head):
    lines = head.split(b"\r\n")
    kept = [l for l in lines if not l.lower().startswith(b"expect:")]
    return b"\r\n".join(kept)


def reset(sock):
    """Closes with a TCP reset, as a server that dies mid-transfer does."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()


def relay(client_sock, upstream_port, faults):
    client = Connection(client_sock)
    upstream = None
    try:
        while True:
            head = client.head()
            if head is None:
                return
            request_line, fields = headers_of(head)
            method = request_line.split(" ", 1)[0]
            length = int(fields.get("content-length", "0") or 0)
            action = faults.decide(method, length)
            if fields.get("expect", "").lower() == "100-continue":
                # Answer the client's wait ourselves; upstream gets the body at once.
                client_sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
                head = strip_expect(head)

            if action == "drop":
                client.exact(length // 2)
                reset(client_sock)
                return
            body = read_body(client, fields) or b""
            if action == "throttle":
                payload = (
                    b"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>SlowDown</Code>"
                    b"<Message>Please reduce your request rate.</Message></Error>"
                )
                client_sock.sendall(
                    b"HTTP/1.1 429 Too Many Requests\r\n"
                    + f"Retry-After: {faults.retry_after}\r\n".encode()
                    + b"Content-Type: application/xml\r\n"
                    + f"Content-Length: {len(payload)}\r\n\r\n".encode()
                    + payload
                )
                continue

            if upstream is None:
                upstream_sock = socket.create_connection(("127.0.0.1", upstream_port))
                upstream = Connection(upstream_sock)
            upstream.sock.sendall(head + body)
            while True:
                response_head = upstream.head()
                if response_head is None:
                    return
                status_line, response_fields = headers_of(response_head)
                status = int(status_line.split(" ")[1])
                if not 100 <= status < 200:
                    break
            no_body = method == "HEAD" or status in (204, 304)
            response_body = read_body(upstream, response_fields, no_body)
            closing = response_body is None
            if closing:
                response_body = upstream.rest()
            client_sock.sendall(response_head + response_body)
            if closing or response_fields.get("connection", "").lower() == "close":
                return
    except (ConnectionError, OSError):
        return
    finally:
        if upstream is not None:
            upstream.sock.close()
        try:
            client_sock.close()
        except OSError:
            pass


def serve_proxy(listener, upstream_port, faults):
    while True:
        sock, _ = listener.accept()
        threading.Thread(target=relay, args=(sock, upstream_port, faults), daemon=True).start()


def bootstrap(buckets, key_id, secret):
    iam = iam_backends[DEFAULT_ACCOUNT_ID]["aws"]
    iam.create_user(region_name="us-east-1", user_name=USER)
    iam.put_user_policy(USER, "all-of-s3", json.dumps(POLICY))
    key = iam.create_access_key(USER)
    key.access_key_id = key_id
    key.secret_access_key = secret

    from moto.s3.models import s3_backends

    for bucket in buckets:
        s3_backends[DEFAULT_ACCOUNT_ID]["aws"].create_bucket(bucket, "us-east-1")
    # From now on every request must be signed with the key above.
    settings.INITIAL_NO_AUTH_ACTION_COUNT = 0


def listing(client, bucket):
    objects = []
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    for page in pages:
        for item in page.get("Contents", []):
            got = client.get_object(Bucket=bucket, Key=item["Key"])
            data = got["Body"].read()
            objects.append(
                {
                    "key": item["Key"],
                    "size": len(data),
                    "sha256": hashlib.sha256(data).hexdigest(),
                    "hex": data.hex(),
                    "content_type": got.get("ContentType"),
                    "sse": got.get("ServerSideEncryption"),
                    "metadata": got.get("Metadata", {}),
                }
            )
    return objects


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bucket", action="append", default=[])
    args = parser.parse_args()
    key_id = os.environ["MAD_S3_ACCESS_KEY_ID"]
    secret = os.environ["MAD_S3_SECRET_ACCESS_KEY"]

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    moto_port = server.get_host_and_port()[1]
    bootstrap(args.bucket, key_id, secret)

    faults = Faults()
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    threading.Thread(
        target=serve_proxy, args=(listener, moto_port, faults), daemon=True
    ).start()

    client = boto3.client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{moto_port}",
        region_name="us-east-1",
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        config=Config(retries={"max_attempts": 1}),
    )

    print(f"READY {listener.getsockname()[1]}", flush=True)
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        try:
            if words[0] == "LIST":
                answer = listing(client, words[1])
            elif words[0] == "DROP":
                with faults.lock:
                    faults.drop = int(words[1])
                    faults.skip = int(words[2]) if len(words) > 2 else 0
                answer = "ok"
            elif words[0] == "THROTTLE":
                with faults.lock:
                    faults.throttle = int(words[1])
                    faults.retry_after = int(words[2])
                answer = "ok"
            elif words[0] == "STATS":
                with faults.lock:
                    answer = {
                        "forwarded": faults.forwarded,
                        "dropped": faults.dropped,
                        "throttled": faults.throttled,
                    }
            else:
                answer = {"error": f"unknown command {words[0]}"}
        except Exception as e:  # the test reads the error instead of hanging
            answer = {"error": repr(e)}
        print(json.dumps(answer), flush=True)
    os._exit(0)


if __name__ == "__main__":
    main()
