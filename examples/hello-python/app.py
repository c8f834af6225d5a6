"""The Python example app of noops: a WSGI app (served by gunicorn from the
python stack) with a page that shows which release and sandbox answered, and
a health check. It needs nothing beyond the standard library."""
import html
import os
import socket
import time

STARTED = time.time()
RELEASE = os.environ.get("NOOPS_RELEASE", "unknown")


def app(environ, start_response):
    path = environ.get("PATH_INFO", "/")
    if path == "/healthz":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok\n"]
    if path != "/":
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found\n"]
    body = (
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>hello from noops</title></head>"
        "<body><h1>Hello from Python on noops</h1>"
        f"<p>Release <b>{html.escape(RELEASE)}</b>, served by sandbox <code>{html.escape(socket.gethostname())}</code>"
        f" as uid {os.getuid()}, up {int(time.time() - STARTED)}s.</p></body></html>\n"
    ).encode()
    start_response("200 OK", [("Content-Type", "text/html; charset=utf-8"), ("X-Release", RELEASE)])
    return [body]
