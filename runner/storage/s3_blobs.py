"""The code blob store in an S3-compatible object store (storage/blobs.py): one object per
blob, `<prefix>/<sha256>` in a bucket, with `runner serve --code-store s3://BUCKET[/prefix]`.

A small client over http.client rather than boto3 (a test dependency only): four object
operations, path-style addressing (what SeaweedFS and MinIO expect, and AWS S3 accepts), and
AWS Signature Version 4, computed by runner/sigv4_signing.py (shared with the cluster's
verifier, cluster/sigv4.py); S3 signs the path encoded once (other services twice) and the
SHA-256 of each body.

Configuration comes from the usual AWS variables, as the SDKs read them: AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN (optional), AWS_REGION / AWS_DEFAULT_REGION
(default us-east-1) and the endpoint from --s3-endpoint, AWS_ENDPOINT_URL_S3 or
AWS_ENDPOINT_URL (default https://s3.REGION.amazonaws.com).

A PUT makes an object visible whole or not at all (S3's own guarantee), so a node reading a
blob another node is still writing finds nothing (BlobNotFound), never a part of it.
"""

from __future__ import annotations

import http.client
import os
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from urllib.parse import quote, urlsplit

from runner.errors import BlobNotFound, InternalError, InvalidParameter
from runner.sigv4_signing import (
    ALGORITHM,
    AMZ_DATE_FORMAT,
    canonical_request,
    credential_scope,
    sha256_hex,
    signature,
    string_to_sign,
)
from runner.storage.blobs import check_key, verified

TIMEOUT_S = 60.0  # one request; a 50 MB package over a slow link still fits
_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


@dataclass(frozen=True)
class S3Location:
    """Where and as whom: parsed from `s3://BUCKET[/prefix]` and the environment."""

    bucket: str
    prefix: str
    endpoint: str  # scheme://host[:port]
    region: str
    access_key_id: str
    secret_access_key: str = ""
    session_token: str = ""

    @classmethod
    def parse(cls, url: str, endpoint: str | None = None, env=None) -> "S3Location":
        """InvalidParameter naming the option or variable to fix when something is missing."""
        env = os.environ if env is None else env
        parts = urlsplit(url or "")
        if parts.scheme != "s3" or not parts.netloc or parts.query or parts.fragment:
            raise InvalidParameter("--code-store", f"{url!r} is not s3://BUCKET[/prefix]")
        if not _BUCKET_RE.match(parts.netloc):
            raise InvalidParameter("--code-store", f"bucket {parts.netloc!r}: use 3-63 "
                                   "lowercase letters, digits, '.' or '-'")
        region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1"
        endpoint = (endpoint or env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL")
                    or f"https://s3.{region}.amazonaws.com").rstrip("/")
        ep = urlsplit(endpoint)
        if ep.scheme not in ("http", "https") or not ep.netloc or ep.path:
            raise InvalidParameter("--s3-endpoint", f"{endpoint!r} is not http(s)://HOST[:PORT]")
        key, secret = env.get("AWS_ACCESS_KEY_ID", ""), env.get("AWS_SECRET_ACCESS_KEY", "")
        if not key or not secret:
            raise InvalidParameter("--code-store", "an S3 code store needs credentials: set "
                                   "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
        return cls(parts.netloc, parts.path.strip("/"), endpoint, region, key, secret,
                   env.get("AWS_SESSION_TOKEN", ""))

    def __repr__(self) -> str:  # never the secret, in a log or a traceback
        return f"S3Location(s3://{self.bucket}/{self.prefix} at {self.endpoint})"


class S3BlobStore:
    def __init__(self, location: S3Location) -> None:
        """No request yet: `open_store` (what a node uses) checks the bucket."""
        self.loc = location
        ep = urlsplit(location.endpoint)
        self._https, self._host = ep.scheme == "https", ep.netloc

    @classmethod
    def open_store(cls, location: S3Location, *, create_bucket: bool = True) -> "S3BlobStore":
        """A store whose bucket was reached (HeadBucket), so a wrong endpoint, secret or bucket
        stops a node at start with a named error rather than at its first deploy.
        `create_bucket`: make the bucket when it does not exist yet (a fresh SeaweedFS or
        MinIO); an existing one is used as it is."""
        store = cls(location)
        store.ensure_bucket(create_bucket)
        return store

    def ensure_bucket(self, create: bool = True) -> None:
        """InternalError unless the bucket answers (created first when missing and `create`)."""
        location = self.loc
        status, _, reply = self._request("HEAD", "")
        if status not in (200, 404) or (status == 404 and not create):
            raise self._failure("HeadBucket", "", status, reply)
        if status == 404:
            body = b"" if location.region == "us-east-1" else (
                "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
                f"<LocationConstraint>{location.region}</LocationConstraint>"
                "</CreateBucketConfiguration>").encode()
            status, _, reply = self._request("PUT", "", body)
            # 409: created meanwhile by another node starting at the same time.
            if status not in (200, 409):
                raise self._failure("CreateBucket", "", status, reply)

    def _key(self, sha256: str) -> str:
        return f"{self.loc.prefix}/{sha256}" if self.loc.prefix else sha256

    def put(self, sha256: str, kind: str, data: bytes) -> None:
        check_key(sha256, data)
        if self.exists(sha256):
            return  # the same bytes: skip re-uploading up to 50 MB
        status, _, reply = self._request("PUT", self._key(sha256), data,
                                         {"x-amz-meta-kind": kind})
        if status != 200:
            raise self._failure("PutObject", sha256, status, reply)

    def get(self, sha256: str) -> bytes:
        check_key(sha256)
        status, _, body = self._request("GET", self._key(sha256))
        if status == 404:
            raise BlobNotFound(f"code blob {sha256} is missing from the S3 code store "
                               f"(s3://{self.loc.bucket}/{self._key(sha256)}); deploy the "
                               "package (or publish the layer) again")
        if status != 200:
            raise self._failure("GetObject", sha256, status, body)
        return verified(sha256, body, f"s3://{self.loc.bucket}/{self._key(sha256)}")

    def exists(self, sha256: str) -> bool:
        check_key(sha256)
        status, _, reply = self._request("HEAD", self._key(sha256))
        if status not in (200, 404):
            raise self._failure("HeadObject", sha256, status, reply)
        return status == 200

    def delete(self, sha256: str) -> None:
        check_key(sha256)
        status, _, reply = self._request("DELETE", self._key(sha256))
        if status not in (200, 204, 404):
            raise self._failure("DeleteObject", sha256, status, reply)

    def close(self) -> None:
        """Nothing held: each request has its own connection (blob traffic is rare)."""

    # ------------------------------------------------------------------ the wire

    def _request(self, method: str, key: str, body: bytes = b"",
                 extra: dict[str, str] | None = None) -> tuple[int, dict, bytes]:
        path = "/" + self.loc.bucket + ("/" + key if key else "")
        headers = self._signed(method, path, body, extra or {})
        cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        conn = cls(self._host, timeout=TIMEOUT_S)
        try:
            conn.request(method, quote(path, safe="/~"), body=body or None, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            return resp.status, dict(resp.getheaders()), data
        except OSError as exc:
            raise InternalError(f"the S3 code store at {self.loc.endpoint} is unreachable "
                                f"({method} {path}: {exc}); check --s3-endpoint / "
                                "AWS_ENDPOINT_URL_S3 and that the store is up") from exc
        finally:
            conn.close()

    def _signed(self, method: str, path: str, body: bytes, extra: dict[str, str]) -> dict:
        """The request's headers with its SigV4 Authorization (service s3)."""
        now = datetime.now(timezone.utc)
        amz_date, date = now.strftime(AMZ_DATE_FORMAT), now.strftime("%Y%m%d")
        headers = {"host": self._host, "x-amz-content-sha256": sha256_hex(body),
                   "x-amz-date": amz_date, **{k.lower(): v for k, v in extra.items()}}
        if self.loc.session_token:
            headers["x-amz-security-token"] = self.loc.session_token
        names = sorted(headers)
        canonical = canonical_request(method, path, "",
                                      "".join(f"{n}:{headers[n].strip()}\n" for n in names),
                                      ";".join(names), headers["x-amz-content-sha256"])
        scope = credential_scope(date, self.loc.region, "s3")
        to_sign = string_to_sign(amz_date, scope, canonical)
        signature_hex = signature(self.loc.secret_access_key, date, self.loc.region, "s3",
                                  to_sign)
        headers["authorization"] = (f"{ALGORITHM} Credential={self.loc.access_key_id}/{scope}, "
                                    f"SignedHeaders={';'.join(names)}, Signature={signature_hex}")
        return headers

    def _failure(self, operation: str, sha256: str, status: int, reply: bytes) -> InternalError:
        code = re.search(rb"<Code>([^<]*)</Code>", reply or b"")
        name = code.group(1).decode(errors="replace") if code else f"HTTP {status}"
        hint = {403: " (check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY and the key's access "
                     "to the bucket)", 404: " (no such bucket: create it, or check the name)",
                301: " (the bucket is in another region: set AWS_REGION)"}.get(status, "")
        return InternalError(f"the S3 code store refused {operation} of "
                             f"s3://{self.loc.bucket}/{self._key(sha256) if sha256 else ''}: "
                             f"{name}{hint}")
