"""An answer given before the request body was read (413 above all) says `Connection: close`, closes,
and the client's next request on a new connection is served (issue 12). Over a real HTTP server:
werkzeug here, gunicorn with the deploy config in tests/deploy/test_gunicorn_connection_close.py."""
from __future__ import annotations

import json
import socket

import pytest
import requests

from service.app import create_app
from tests.conftest import load_sample

ORDER_SIGN = "/cds-services/pump-visit-coding-order-sign"
LIMIT = 4096


def raw_exchange(port: int, request: bytes, timeout_s: float = 10) -> tuple[dict[str, str], bytes, bool]:
    """Send one request on a fresh socket; return the answer's headers, its body and whether the
    server then closed the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as sock:
        try:
            sock.sendall(request)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may answer and close before the whole body is sent
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            assert chunk, f"connection closed before an answer: {data!r}"
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        headers[":status"] = lines[0].split()[1]
        while len(body) < int(headers.get("content-length", 0)):
            body += sock.recv(65536)
        try:
            closed = sock.recv(1) == b""
        except ConnectionResetError:
            closed = True
        except TimeoutError:
            closed = False
    return headers, body, closed


def post_request(body: bytes, path: str = ORDER_SIGN) -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


@pytest.fixture
def server(settings, live_server_factory):
    return live_server_factory(create_app(settings.with_overrides(max_body_bytes=LIMIT)))


def test_413_says_connection_close(server):
    # werkzeug's server then reads on until the client hangs up, which a client told `close` does;
    # that the server itself closes is checked under gunicorn
    headers, body, _ = raw_exchange(server.port, post_request(b'{"x": "' + b"a" * 3 * LIMIT + b'"}'), timeout_s=2)
    assert headers[":status"] == "413"
    assert headers["connection"].lower() == "close"
    assert json.loads(body)["issue"][0]["code"] == "too-long"


def test_after_a_413_the_client_makes_its_next_request(server):
    with requests.Session() as session:
        big = session.post(server.url + ORDER_SIGN, data=b"x" * 3 * LIMIT, headers={"Content-Type": "application/json"},
                           timeout=10)
        assert big.status_code == 413 and big.headers["Connection"].lower() == "close"
        small = session.post(server.url + ORDER_SIGN, json=_small_request(), timeout=10)
        assert small.status_code == 200


def _small_request() -> dict:
    body = load_sample("requests/order-sign-62367-analysis-only.json")
    body["prefetch"] = {"device": None, "procedures": None}
    body["context"]["draftOrders"]["entry"] = []
    assert len(json.dumps(body)) < LIMIT
    return body
