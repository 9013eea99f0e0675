"""A stand-in for the system browser, for ``$BROWSER`` (which ``webbrowser`` honours).

``python fake_browser.py URL`` notes the launch in ``$FAKE_BROWSER_LOG`` (one line per login),
then returns at once, as a real browser's launcher does, while a detached copy of itself does
what a person would in the browser with the authorization server's ``INTERACTION_MODE=auto``:
follow its redirects, with cookies, to the redirect URI on loopback. A client that starts its
loopback listener only after opening the browser (FastMCP's) is waited for: a refused
connection there is tried again (60 s at most), as a person would reload the page.
"""

from __future__ import annotations

import http.cookiejar
import os
import subprocess
import sys
import time
import traceback
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urljoin, urlsplit

DETACHED = "FAKE_BROWSER_DETACHED"
LISTENER_WAIT = 60.0


class _Stop(urllib.request.HTTPRedirectHandler):
    """Hand every redirect back as an HTTPError: the redirects are followed here, one by one."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def browse(url: str, *, max_hops: int = 20) -> None:
    jar = urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
    browser = urllib.request.build_opener(urllib.request.ProxyHandler({}), jar, _Stop)
    origin = urlsplit(url)[:2]
    for _ in range(max_hops):
        try:
            browser.open(url, timeout=30).read()
            return  # a page, not a redirect: nothing more to do
        except urllib.error.HTTPError as exc:
            location = exc.headers.get("location")
            if not location:
                raise
        url = urljoin(url, location)
        if urlsplit(url)[:2] != origin:  # back to the client's redirect URI
            deliver(browser, url)
            return
    raise RuntimeError(f"more than {max_hops} redirects")


def deliver(browser: urllib.request.OpenerDirector, url: str) -> None:
    deadline = time.monotonic() + LISTENER_WAIT
    while True:
        try:
            browser.open(url, timeout=30).read()
            return
        except urllib.error.URLError as exc:
            refused = isinstance(exc.reason, ConnectionRefusedError)
            if not refused or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def main() -> None:
    log = os.environ["FAKE_BROWSER_LOG"]
    url = sys.argv[1]
    if os.environ.get(DETACHED) != "1":
        with open(log, "a") as f:
            f.write(url + "\n")
        subprocess.Popen(
            [sys.executable, __file__, url],
            env={**os.environ, DETACHED: "1"},
            start_new_session=True,
            stdin=subprocess.DEVNULL,
        )
        return
    try:
        browse(url)
    except Exception:
        with open(log + ".errors", "a") as f:
            f.write(traceback.format_exc())


if __name__ == "__main__":
    main()
