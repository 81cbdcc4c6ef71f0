"""Errors the host answers with: a status and a JSON body that says what was wrong."""

from __future__ import annotations


class HttpError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def bad_request(message: str) -> HttpError:
    return HttpError(400, message)
