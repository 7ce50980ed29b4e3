"""Secrets kept out of every line weatherpipe prints: masked URLs and a redacting log formatter."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable
from typing import Annotated, Any
from urllib.parse import quote, unquote

from pydantic import AfterValidator

MASK = "***"
# scheme://user:password@ — the password part of any URL in free text (log lines, errors).
_URL_PASSWORD = re.compile(r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s:/@]*:)(?P<pw>[^\s@/]+)@")


def mask_url(url: str) -> str:
    """`url` with its password (if any) replaced by ***: safe to print."""
    return _URL_PASSWORD.sub(lambda m: f"{m['head']}{MASK}@", url)


def url_password(url: str) -> str | None:
    """The password in `url`, decoded, or None."""
    match = _URL_PASSWORD.search(url)
    return unquote(match["pw"]) if match else None


class SecretUrl(str):
    """A URL that behaves as the string it is, but whose repr masks its password.

    Settings hold database and bus URLs as this type, so printing the settings object (or an
    error that shows it) never shows a password; `.masked` is the form to print on purpose.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return repr(mask_url(str.__str__(self)))

    @property
    def masked(self) -> str:
        return mask_url(str.__str__(self))


MaskedUrl = Annotated[str, AfterValidator(SecretUrl)]


class Redactor:
    """Replaces every known secret, and the password of any URL, with *** in a text."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self.secrets: set[str] = set()
        self.add(*secrets)

    def add(self, *secrets: str | None) -> None:
        for secret in secrets:
            # Very short values would mask ordinary words; they are not secrets worth the name.
            if secret and len(secret) >= 4:
                self.secrets.update(_spellings(secret))

    def __call__(self, text: str) -> str:
        text = mask_url(text)
        for secret in sorted(self.secrets, key=len, reverse=True):
            if secret in text:
                # Whole values only: a password "weather" must not turn "weatherpipe" into
                # "***pipe" (which would also tell a reader the password).
                text = _whole(secret).sub(MASK, text)
        return text


def _spellings(secret: str) -> set[str]:
    """`secret` as it may appear in a line: as is, escaped inside JSON, percent-encoded in a URL.

    A JSON log line writes a password holding `"` or `\\` escaped, and a URL holds it
    percent-encoded; matching only the raw form would let those lines through.
    """
    return {secret, json.dumps(secret, ensure_ascii=False)[1:-1], quote(secret, safe="")}


def _whole(secret: str) -> re.Pattern[str]:
    """`secret` where it is not part of a longer run of letters and digits."""
    return re.compile(rf"(?<![A-Za-z0-9]){re.escape(secret)}(?![A-Za-z0-9])")


class RedactingFormatter(logging.Formatter):
    """Wraps another formatter and redacts the finished line, tracebacks included.

    Installed on the CLI's one handler, it covers our loggers and every library's (nats-py's
    reconnect warnings, uvicorn's access log) without each call site having to remember.
    """

    def __init__(self, inner: logging.Formatter, redactor: Redactor) -> None:
        super().__init__()
        self.inner = inner
        self.redactor = redactor

    def format(self, record: logging.LogRecord) -> str:
        return self.redactor(self.inner.format(record))


def secrets_of(settings: Any) -> list[str]:
    """The secret values a Settings object holds: URL passwords and the API token."""
    found = [url_password(str(settings.database_url)), url_password(str(settings.bus_url))]
    token = getattr(settings, "api_token", None)
    if token is not None:
        found.append(token.get_secret_value())
    return [s for s in found if s]
