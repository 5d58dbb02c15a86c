"""An HTTP exchange that must keep moving: a watchdog closes the connection of a server that sends too little.

A socket timeout fires only on silence: a server that sends a byte now and then, in its headers, in a chunk's size
line or in the body, holds a download for ever. Here every window of ``timeout`` seconds, from the connection on,
must bring at least ``floor`` bytes a second of the file (as curl's ``--speed-limit``); where one does not, the
watchdog shuts the socket down, the read that waits on it ends, and the caller learns why from ``stalled``.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import threading
import urllib.request


class Watchdog:
    """Counts the bytes a download received (``received``, kept up by the reader) and stops a stalled one.

    ``stalled``: None while the exchange moves, else the bytes the last window brought, when the socket was shut.
    """

    def __init__(self, timeout: float, floor: float):
        self.timeout, self.floor = timeout, floor
        self.received = 0
        self.stalled: int | None = None
        self.sock: socket.socket | None = None
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="dnn-fetch-watchdog", daemon=True)

    def __enter__(self) -> Watchdog:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._done.set()
        self._thread.join()

    def _watch(self) -> None:
        last = 0
        while not self._done.wait(self.timeout):
            brought = self.received - last
            if brought < self.floor * self.timeout:
                self.stalled = brought
                sock = self.sock
                if sock is not None:
                    with contextlib.suppress(OSError):
                        sock.shutdown(socket.SHUT_RDWR)
                return
            last = self.received

    def opener(self) -> urllib.request.OpenerDirector:
        """urllib's opener, its connections (HTTP and HTTPS, redirects too) known to this watchdog."""
        watch = self

        class Connection(http.client.HTTPConnection):
            def connect(self):
                super().connect()
                watch.sock = self.sock

        class SecureConnection(http.client.HTTPSConnection):
            def connect(self):
                super().connect()
                watch.sock = self.sock

        class Handler(urllib.request.HTTPHandler):
            def http_open(self, req):
                return self.do_open(Connection, req)

        class SecureHandler(urllib.request.HTTPSHandler):
            def https_open(self, req):
                return self.do_open(SecureConnection, req, context=self._context)

        return urllib.request.build_opener(Handler, SecureHandler)
