"""What keeps background training going through faults: a heartbeat that holds the training lock's short lease
while a training runs (a killed worker's lease lapses within RETRAIN_LOCK_SECONDS), and writes that wait for the
database to come back (so a database outage is recorded as the real error, not left as a job stuck "running")."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Self, TypeVar

from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError, connection

logger = logging.getLogger(__name__)

T = TypeVar("T")
DATABASE_UNAVAILABLE = (OperationalError, InterfaceError)


def _drop_broken_connection() -> None:
    try:
        connection.close()
    except DatabaseError:  # an already dead connection may fail to close: Django opens a new one on the next query
        logger.debug("Closing a broken database connection failed", exc_info=True)


def database_connection_refresh() -> None:
    """After a long step without queries (TensorFlow's import, a training, the serving arrays): replace a connection
    that the server, a pooler or a firewall closed meanwhile (idle timeouts), so that the results still get saved
    instead of failing the whole training at its first query. Django opens a fresh one at the next query."""
    if connection.connection is None:
        return
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError as error:
        logger.info("Replacing a database connection that was closed while training (%s)", str(error).strip()[:200])
        _drop_broken_connection()


def when_database_is_back(write: Callable[[], T], *, what: str, seconds: float | None = None) -> T:
    """Run `write`, retrying while the database is unavailable, for at most `seconds`
    (RETRAIN_DATABASE_WAIT_SECONDS); other errors, and the last one after that, are raised."""
    deadline = time.monotonic() + (settings.RETRAIN_DATABASE_WAIT_SECONDS if seconds is None else seconds)
    delay = 0.5
    while True:
        try:
            return write()
        except DATABASE_UNAVAILABLE as error:
            if time.monotonic() + delay > deadline:
                logger.error("Gave up %s: the database is still unavailable (%s)", what, str(error).strip()[:200])
                raise
            logger.warning(
                "Database unavailable while %s; retrying in %.1f s (%s)", what, delay, str(error).strip()[:200]
            )
            _drop_broken_connection()
            time.sleep(delay)
            delay = min(delay * 2, 4.0)


class LockHeartbeat:
    """Renews the training lock from a thread every third of its lease while a training runs, however long its
    epochs take. `lost` is set when the lease lapsed and someone else holds the lock: the training must stop."""

    def __init__(self, *, holder: str, seconds: float, renew: Callable[..., bool]):
        self.holder, self.seconds, self._renew = holder, seconds, renew
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="training-lock-heartbeat", daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        try:
            while not self._stop.wait(self.seconds / 3):
                try:
                    if not self._renew(holder=self.holder, seconds=self.seconds):
                        logger.error("The training lock of %s lapsed and was taken by another worker", self.holder)
                        self.lost.set()
                        return
                except DatabaseError as error:  # an outage: keep training, renew when the database is back
                    logger.warning("Could not renew the training lock (%s); retrying", str(error).strip()[:200])
                    _drop_broken_connection()
        finally:
            _drop_broken_connection()  # this thread's own connection
