"""The HTTP sink answers HEAD (what health checks send) with 200 and the headers GET would give,
and no body (issue 36: HEAD answered 501)."""

from __future__ import annotations

import http.client
from urllib.parse import urlparse

from tests.realtime.test_http import served  # noqa: F401 - the fixture


def _head(url: str, path: str) -> http.client.HTTPResponse:
    u = urlparse(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    conn.request("HEAD", path)
    return conn.getresponse()


def test_head_is_200_with_headers_and_no_body(served):  # noqa: F811
    for path, ctype in [
        ("/", "text/html"),
        ("/stats.json", "application/json"),
        ("/frame.jpg", "image/jpeg"),
        ("/stream", "multipart/x-mixed-replace"),
    ]:
        resp = _head(served.url, path)
        assert resp.status == 200, path
        assert resp.getheader("Content-Type").startswith(ctype), path
        assert resp.read() == b"", path
    assert _head(served.url, "/nope").status == 404
