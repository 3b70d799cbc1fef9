"""Domain errors of the prediction service; the servicer maps them to gRPC status codes."""

from __future__ import annotations


class PredictionError(Exception):
    """Base class of prediction-domain errors."""


class InsufficientDataError(PredictionError):
    """Training was asked for with too little data to learn or to evaluate anything.

    Carries what was needed and what was found so the caller can report it (FAILED_PRECONDITION).
    """

    def __init__(self, what: str, needed: int, found: int, detail: str = "") -> None:
        self.what = what
        self.needed = needed
        self.found = found
        self.detail = detail
        message = f"insufficient data: need at least {needed} {what}, found {found}"
        if detail:
            message += f" ({detail})"
        super().__init__(message)


class ModelFormatError(PredictionError):
    """A model version directory is missing files or was written by an incompatible format."""
