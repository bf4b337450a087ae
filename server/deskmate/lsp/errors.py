"""The JSON-RPC errors deskmate answers with (docs/protocol.md, "Errors")."""

from __future__ import annotations

import logging

from pygls.exceptions import JsonRpcException, JsonRpcInternalError, JsonRpcInvalidParams

REQUEST_FAILED = -32803  # LSP's RequestFailed: the request was valid but could not be carried out
INVALID_PARAMS = JsonRpcInvalidParams.CODE
INTERNAL_ERROR = JsonRpcInternalError.CODE


def request_failed(message: str) -> JsonRpcException:
    return JsonRpcException(message, code=REQUEST_FAILED)


def internal_error(message: str) -> JsonRpcException:
    """InternalError with a one-line message and no traceback (pygls' own would carry one)."""
    return JsonRpcException(message, code=INTERNAL_ERROR)


class ExpectedRequestErrors(logging.Filter):
    """Drops pygls' traceback for error answers we meant to give (bad input, model errors).

    Those are answers, not faults: the command logs them in one line already.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        return not (
            isinstance(error, JsonRpcException)
            and error.code in (REQUEST_FAILED, INVALID_PARAMS, INTERNAL_ERROR)
        )


def quiet_expected_errors() -> None:
    """Install ExpectedRequestErrors on pygls' logger, once per process."""
    logger = logging.getLogger("pygls.protocol.json_rpc")
    if not any(isinstance(f, ExpectedRequestErrors) for f in logger.filters):
        logger.addFilter(ExpectedRequestErrors())
