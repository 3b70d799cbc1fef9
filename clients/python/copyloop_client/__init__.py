"""copyloop's Python SDK: typed clients for the four services, configuration, and errors that
carry the services' status details. `from copyloop_client import Copyloop, ClientConfig`."""

from copyloop_client.aio import AsyncCopyloop
from copyloop_client.client import Copyloop
from copyloop_client.config import ClientConfig, ConfigError, RetryPolicy
from copyloop_client.convert import InputError
from copyloop_client.errors import (
    AlreadyExistsError,
    CancelledError,
    CopyloopError,
    DeadlineExceededError,
    FailedPreconditionError,
    InternalError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    ResourceExhaustedError,
    UnauthenticatedError,
    UnavailableError,
)
from copyloop_client.results import IngestSummary, Rejection, UpsertSummary

__all__ = [
    "AlreadyExistsError",
    "AsyncCopyloop",
    "CancelledError",
    "ClientConfig",
    "ConfigError",
    "Copyloop",
    "CopyloopError",
    "DeadlineExceededError",
    "FailedPreconditionError",
    "IngestSummary",
    "InputError",
    "InternalError",
    "InvalidArgumentError",
    "NotFoundError",
    "PermissionDeniedError",
    "Rejection",
    "ResourceExhaustedError",
    "RetryPolicy",
    "UnauthenticatedError",
    "UnavailableError",
    "UpsertSummary",
]

__version__ = "0.1.0"
