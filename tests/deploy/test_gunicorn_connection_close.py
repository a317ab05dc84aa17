"""Under gunicorn with the deploy config: an answer given before the body was read says
`Connection: close` and the connection is closed; an answer to a fully read request keeps it alive
(issue 12: a 413 used to say keep-alive and then drop the connection)."""
from __future__ import annotations

import json
import socket
from urllib.parse import urlsplit

import requests

from tests.api.test_connection_close import post_request, raw_exchange
from tests.deploy.test_gunicorn import gunicorn  # noqa: F401  (the fixture: deploy config, 2 workers)

ORDER_SIGN = "/cds-services/pump-visit-coding-order-sign"
DEFAULT_LIMIT = 2 * 1024 * 1024  # max_body_bytes default; gunicorn drains only 64 KiB of a body left unread


def port_of(url: str) -> int:
    return urlsplit(url).port  # type: ignore[return-value]


def test_413_says_close_closes_and_the_next_request_is_served(gunicorn):  # noqa: F811
    url, _ = gunicorn
    body = b'{"x": "' + b"a" * (DEFAULT_LIMIT + 200_000) + b'"}'
    headers, answer, closed = raw_exchange(port_of(url), post_request(body))
    assert headers[":status"] == "413"
    assert headers["connection"].lower() == "close"
    assert json.loads(answer)["issue"][0]["code"] == "too-long"
    assert closed
    with requests.Session() as session:  # a client reusing its pool after the 413 is served
        too_big = session.post(url + ORDER_SIGN, data=body, headers={"Content-Type": "application/json"}, timeout=20)
        assert too_big.status_code == 413
        assert session.get(url + "/healthz", timeout=5).status_code == 200
        # chunked, without Content-Length: the limit is only found while reading
        chunks = (body[i : i + 65536] for i in range(0, len(body), 65536))
        chunked = session.post(url + ORDER_SIGN, data=chunks, headers={"Content-Type": "application/json"}, timeout=20)
        assert chunked.status_code == 413 and chunked.headers["Connection"].lower() == "close"
        assert session.get(url + "/healthz", timeout=5).status_code == 200


def test_404_before_a_large_body_is_read_closes_too(gunicorn):  # noqa: F811
    url, _ = gunicorn
    headers, _, closed = raw_exchange(port_of(url), post_request(b"{" + b" " * 200_000 + b"}", "/cds-services/nope"))
    assert headers[":status"] == "404" and headers["connection"].lower() == "close" and closed


def test_answers_to_fully_read_requests_keep_the_connection(gunicorn):  # noqa: F811
    url, _ = gunicorn
    bad = b'{"hook": "order-sign"}'  # read whole, then refused: the connection stays usable
    with socket.create_connection(("127.0.0.1", port_of(url)), timeout=10) as sock:
        for _ in range(2):
            sock.sendall(post_request(bad))
            data = b""
            while b"\r\n\r\n" not in data or not data.rstrip().endswith(b"}"):
                chunk = sock.recv(65536)
                assert chunk, "the server closed a connection it had kept alive"
                data += chunk
            assert data.startswith(b"HTTP/1.1 400") and b"Connection: keep-alive" in data
