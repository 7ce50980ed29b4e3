"""The exception tree of weatherpipe.

    WeatherpipeError
    ├── ConfigError            a setting has a bad value (names the variable)
    ├── BusError               anything the message bus adapter raises
    │   ├── BusUnavailable     the broker cannot be reached (retry with backoff)
    │   └── BusNotSetUp        the topic / subscription does not exist yet
    ├── StorageError           anything the database raises
    │   ├── StorageUnavailable the database cannot be reached (retry with backoff)
    │   ├── StorageRefused     the database refuses the data itself (retrying cannot help)
    │   └── KeysTaken          a write asked to store only new keys met one stored (or twice)
    ├── DecodeError            a message is not a valid reading (carries the reason)
    └── ApiError               errors that reach the API carry their HTTP status
        ├── BadRequest         400 (a telemetry body that is no reading at all)
        ├── Unauthorized       401 (a missing or wrong device token)
        ├── Forbidden          403 (the admin API without a configured API token)
        ├── NotFound           404
        ├── Conflict           409 (a device registered twice)
        ├── PayloadTooLarge    413
        ├── InvalidParameter   422
        ├── TooManyRequests    429 (a device over its rate; carries retry_after)
        └── NotInstalled       501 (a feature's optional extra is missing, e.g. pyarrow)

Vendor exceptions (nats, paho, google, pymysql, sqlite3) are translated into these at the edge
of the adapter that talks to them, so nothing above a backend knows which one it uses.
"""

from __future__ import annotations


class WeatherpipeError(Exception):
    """Base of every error weatherpipe raises on purpose."""


class ConfigError(WeatherpipeError):
    """A setting has a bad value; the message names the variable."""


class BusError(WeatherpipeError):
    """The message bus failed."""


class BusUnavailable(BusError):
    """The broker cannot be reached right now; the caller retries with backoff."""


class BusNotSetUp(BusError):
    """The topic, stream or subscription does not exist: run `weatherpipe bus setup`."""


class StorageError(WeatherpipeError):
    """The database failed."""


class StorageUnavailable(StorageError):
    """The database cannot be reached right now; the caller retries with backoff."""


class StorageRefused(StorageError):
    """The database refused the rows themselves (out of range, too long, a constraint);
    `reason` is its own short message. Ingest splits the batch to find the refused ones."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class KeysTaken(StorageError):
    """A batch written on the condition that every key in it is new held one already stored
    (or one twice); nothing of it was written. Group commit then writes its parts one by one."""


class DecodeError(WeatherpipeError):
    """A message is not a valid reading; `reason` says precisely why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ApiError(WeatherpipeError):
    """An error that reaches the API, with the HTTP status it maps to."""

    status_code = 500


class NotFound(ApiError):
    status_code = 404


class InvalidParameter(ApiError):
    status_code = 422


class BadRequest(ApiError):
    status_code = 400


class Unauthorized(ApiError):
    status_code = 401


class Forbidden(ApiError):
    status_code = 403


class Conflict(ApiError):
    status_code = 409


class PayloadTooLarge(ApiError):
    status_code = 413


class TooManyRequests(ApiError):
    status_code = 429

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class NotInstalled(ApiError):
    """A feature needs an optional extra that is not installed; the message names it."""

    status_code = 501
