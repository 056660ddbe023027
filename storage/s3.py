"""ImageStore on S3-compatible object storage (AWS S3, MinIO, Ceph...), for workers on several machines.

Content-addressed like the file store: the image with SHA-256 digest abcdef... is the object PREFIXabcdef....png
(the name older deployments have), whatever its format; its Content-Type says which (WebP, JPEG or PNG).
put() is one PutObject, which S3 makes visible whole or not at all, so a node row naming the digest can be committed
as soon as it returns; putting the same bytes again rewrites the same object and refreshes its LastModified, so a
sweep does not take an image that is about to be referenced again.

When S3 cannot be reached (after boto3's own retries), put, get and exists raise core.errors.StorageUnavailable from
boto3's error: the front-end tells the person storage is out (never "something went wrong"), and a worker, which
finds boto3's error as its cause (bot.distributed.outage), waits and tries again.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

from core.errors import StorageUnavailable
from core.stored_images import picture_mime

_DIGEST = re.compile(r"[0-9a-f]{64}")
_SUFFIX = ".png"
_DELETE_BATCH = 1000  # DeleteObjects takes at most this many keys


class S3ImageStore:
    """Images in `bucket` under `prefix`, through a boto3 S3 client. sweep() spares objects younger than
    grace_seconds, so an image put just before its node is committed is never taken for garbage."""

    def __init__(self, client, bucket: str, *, prefix: str = "images/", grace_seconds: float = 3600.0) -> None:
        self._client = client
        self.bucket = bucket
        self.prefix = prefix
        self.grace_seconds = grace_seconds

    def ensure_bucket(self) -> None:
        """Create the bucket if it does not exist yet (first start of a fresh deployment)."""
        try:
            self._client.head_bucket(Bucket=self.bucket)
        except ClientError as error:
            if _status(error) != 404:
                raise
            self._client.create_bucket(Bucket=self.bucket)

    def key_for(self, digest: str) -> str:
        """The object key of a digest; KeyError for anything not a SHA-256 hex digest."""
        if not _DIGEST.fullmatch(digest):
            raise KeyError(digest)
        return f"{self.prefix}{digest}{_SUFFIX}"

    def put(self, data: bytes) -> str:
        """Store the bytes (one PutObject) and return their SHA-256 hex digest."""
        digest = hashlib.sha256(data).hexdigest()
        with _reaching():
            self._client.put_object(Bucket=self.bucket, Key=self.key_for(digest), Body=data,
                                    ContentType=picture_mime(data))
        return digest

    def get(self, digest: str) -> bytes:
        """The bytes for a digest; KeyError if unknown."""
        with _reaching():
            try:
                response = self._client.get_object(Bucket=self.bucket, Key=self.key_for(digest))
            except ClientError as error:
                if _status(error) == 404:
                    raise KeyError(digest) from None
                raise
            return response["Body"].read()

    def exists(self, digest: str) -> bool:
        with _reaching():
            try:
                self._client.head_object(Bucket=self.bucket, Key=self.key_for(digest))
            except KeyError:
                return False
            except ClientError as error:
                if _status(error) == 404:
                    return False
                raise
            return True

    def sweep(self, keep: set[str]) -> int:
        """Delete images whose digest is not in keep and whose LastModified is older than the grace period."""
        cutoff = datetime.now(UTC) - timedelta(seconds=self.grace_seconds)
        doomed = []
        for page in self._client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix):
            for item in page.get("Contents", []):
                name = item["Key"][len(self.prefix):]
                digest = name.removesuffix(_SUFFIX)
                if name.endswith(_SUFFIX) and digest not in keep and item["LastModified"] <= cutoff:
                    doomed.append(item["Key"])
        for start in range(0, len(doomed), _DELETE_BATCH):
            batch = [{"Key": key} for key in doomed[start:start + _DELETE_BATCH]]
            self._client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})
        return len(doomed)


def unreachable(error: BaseException) -> bool:
    """Whether a boto3 error means S3 cannot be reached or is failing (an outage), not a bad request."""
    if isinstance(error, (BotoConnectionError, HTTPClientError)):
        return True
    status = isinstance(error, ClientError) and _status(error)
    return bool(status) and status >= 500


@contextmanager
def _reaching() -> Iterator[None]:
    """StorageUnavailable, raised from boto3's error, for an outage inside the block."""
    try:
        yield
    except (ClientError, BotoConnectionError, HTTPClientError) as error:
        if unreachable(error):
            raise StorageUnavailable() from error
        raise


def _status(error: ClientError) -> int | None:
    return error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
