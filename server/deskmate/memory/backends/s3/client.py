"""One bucket's requests: the boto3 client, parallel requests, conditional writes, and the
user-facing error (never with credentials) for every failed request."""

from __future__ import annotations

import random
import re
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar
from urllib.parse import quote

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    HTTPClientError,
    NoCredentialsError,
    PartialCredentialsError,
    ReadTimeoutError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

from ...errors import BackendUnavailable, StorageError

CONNECT_TIMEOUT_SECONDS = 2.0
READ_TIMEOUT_SECONDS = 30.0
MAX_ATTEMPTS = 200  # compare-and-swap rounds before a write gives up

_REFUSED = {
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "InvalidToken",
    "TokenRefreshRequired",
}
_WRONG_REGION = {"PermanentRedirect", "AuthorizationHeaderMalformed", "IllegalLocationConstraintException"}
_DECLINED = {"PreconditionFailed", "412", "ConditionalRequestConflict"}

T = TypeVar("T")
R = TypeVar("R")


class Declined(Exception):
    """The store declined a conditional request: the object exists, changed, or is gone."""

    def __init__(self, retried: bool) -> None:
        super().__init__("precondition failed")
        self.retried = retried  # botocore resent it: the first try may have landed


def pause(attempt: int) -> None:
    """Back off a little after losing a race, more the more often we lose."""
    time.sleep(random.uniform(0, min(0.2, 0.004 * (attempt + 1))))


class S3Client:
    """Requests to one bucket. Constructing one never connects; the first request does."""

    def __init__(
        self,
        bucket: str,
        *,
        name: str,
        endpoint: str | None,
        region: str | None,
        addressing: str,
        access_key_id: str | None,
        secret_access_key: str | None,
    ) -> None:
        self.bucket = bucket
        self.name = name  # the store, for messages
        self.endpoint = endpoint
        self.region = region
        self.addressing = addressing
        self.credentials = (access_key_id, secret_access_key)
        self._client: Any = None
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def boto(self) -> Any:
        """The boto3 S3 client, made on first use."""
        with self._lock:
            if self._client is None:
                key_id, secret = self.credentials
                session = boto3.session.Session(
                    aws_access_key_id=key_id, aws_secret_access_key=secret, region_name=self.region
                )
                config = Config(
                    connect_timeout=CONNECT_TIMEOUT_SECONDS,
                    read_timeout=READ_TIMEOUT_SECONDS,
                    retries={"total_max_attempts": 2, "mode": "standard"},  # a dead endpoint fails fast
                    max_pool_connections=32,
                    s3={"addressing_style": self.addressing},
                    # Newer default checksums that some S3-compatible stores reject: only where required.
                    request_checksum_calculation="when_required",
                    response_checksum_validation="when_required",
                )
                self._client = session.client("s3", endpoint_url=self.endpoint, config=config)
            return self._client

    def close(self) -> None:
        """Close the HTTP connections and the threads of parallel requests (blocks until they end)."""
        with self._lock:
            client, pool = self._client, self._pool
            self._client = self._pool = None
        if pool is not None:
            pool.shutdown()
        if client is not None:
            client.close()

    def map(self, function: Callable[[T], R], items: Sequence[T]) -> list[R]:
        """``function`` over ``items``, in parallel for independent requests, results in order."""
        if len(items) < 2:
            return [function(item) for item in items]
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="deskmate-s3")
            pool = self._pool
        return list(pool.map(function, items))

    def call(self, operation: str, key: str, **params: Any) -> Any:
        """One S3 request. None for a GET of a missing object; Declined for a failed condition."""
        conditional = "IfMatch" in params or "IfNoneMatch" in params
        try:
            return getattr(self.boto(), operation)(Bucket=self.bucket, **params)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in _DECLINED or (conditional and code in ("NoSuchKey", "404")):
                retried = exc.response.get("ResponseMetadata", {}).get("RetryAttempts", 0) > 0
                raise Declined(retried) from None
            if code in ("NoSuchKey", "404") and operation == "get_object":
                return None
            raise self.failure(exc, key) from None
        except BotoCoreError as exc:
            raise self.failure(exc, key) from None

    def get(self, key: str) -> tuple[bytes, str] | None:
        """The body of the object at ``key`` and its ETag; None if there is none."""
        response = self.call("get_object", key, Key=key)
        if response is None:
            return None
        try:
            body = response["Body"].read()
        except BotoCoreError as exc:
            raise self.failure(exc, key) from None
        finally:
            response["Body"].close()
        return body, response["ETag"]

    def put(self, key: str, body: bytes, *, if_match: str | None = None, create: bool = False) -> str:
        """Write ``key``; return the new ETag. Declined when the condition fails."""
        params: dict[str, Any] = {"Key": key, "Body": body, "ContentType": "application/json"}
        if if_match is not None:
            params["IfMatch"] = if_match
        if create:
            params["IfNoneMatch"] = "*"
        return self.call("put_object", key, **params)["ETag"]

    def remove(self, key: str, if_match: str | None = None) -> None:
        """Delete ``key``; with ``if_match``, only that version of it (else nothing happens)."""
        try:
            if if_match is None:
                self.call("delete_object", key, Key=key)
            else:
                self.call("delete_object", key, Key=key, IfMatch=if_match)
        except Declined:
            pass

    def listing(self, prefix: str, *, start_after: str = "", delimiter: str = "") -> list[dict[str, Any]]:
        """Every object (with ``delimiter``: every common prefix) under ``prefix``, in key order."""
        params: dict[str, Any] = {"Prefix": prefix}
        if start_after:
            params["StartAfter"] = start_after
        if delimiter:
            params["Delimiter"] = delimiter
        found: list[dict[str, Any]] = []
        while True:
            page = self.call("list_objects_v2", prefix, **params)
            found += page.get("CommonPrefixes" if delimiter else "Contents") or []
            if not page.get("IsTruncated"):
                return found
            params["ContinuationToken"] = page["NextContinuationToken"]

    def failure(self, exc: Exception, key: str) -> StorageError:
        """The user-facing error for a failed request, without credentials."""
        where = f"s3://{self.bucket}/{key}"
        if isinstance(exc, ClientError):
            error = exc.response.get("Error", {})
            code = str(error.get("Code", ""))
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
            if code == "NoSuchBucket":
                return BackendUnavailable(self.name, "the bucket does not exist")
            if code in _REFUSED:
                return BackendUnavailable(self.name, f"the credentials were refused ({code})")
            if code in _WRONG_REGION:
                return BackendUnavailable(
                    self.name, f"the bucket is in another region ({code}); set ?region= in the storage URL"
                )
            if code == "AccessDenied" or status == 403:
                return BackendUnavailable(self.name, f"access to {where} was denied ({code})")
            if code == "NotImplemented":
                return StorageError(
                    f"{self.name} does not support a request deskmate needs on {where} "
                    "(conditional writes: If-None-Match and If-Match)."
                )
            if status >= 500:
                return BackendUnavailable(self.name, f"the server answered {status} {code}")
            message = self.scrub(f"{code} {error.get('Message') or ''}".strip())
            return StorageError(f"S3 request on {where} failed: {message}")
        if isinstance(exc, NoCredentialsError | PartialCredentialsError):
            return BackendUnavailable(
                self.name,
                "no AWS credentials found (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
                "or AWS_PROFILE, or write KEY:SECRET@ in the storage URL)",
            )
        if isinstance(exc, ConnectTimeoutError):
            return BackendUnavailable(self.name, f"connecting timed out after {CONNECT_TIMEOUT_SECONDS:g} s")
        if isinstance(exc, ReadTimeoutError):
            return BackendUnavailable(self.name, f"no answer within {READ_TIMEOUT_SECONDS:g} s")
        if isinstance(exc, EndpointConnectionError):
            # botocore's own text names the whole request URL; the OS reason is what helps.
            found = re.search(r"\[Errno -?\d+\][^'\")]*", str(exc.kwargs.get("error", "")))
            return BackendUnavailable(self.name, f"cannot connect ({found.group(0) if found else exc})")
        if isinstance(exc, BotoConnectionError | HTTPClientError):
            return BackendUnavailable(self.name, self.scrub(str(exc)))
        return StorageError(f"S3 request on {where} failed: {self.scrub(str(exc))}")

    def scrub(self, text: str) -> str:
        """``text`` without the secret key, decoded or as written in a URL."""
        secret = self.credentials[1]
        for form in sorted({secret, quote(secret or "", safe="")} - {None, ""}, key=len, reverse=True):
            text = text.replace(form, "***")
        return text
