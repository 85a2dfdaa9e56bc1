"""AWS Signature Version 4: the primitives a signer and a verifier share.

Two layers use SigV4: the S3 code store signs its requests (`storage/s3_blobs.py`) and a
cluster node verifies the signatures boto3 and the AWS CLI make with the token as their secret
(`cluster/sigv4.py`). Storage sits below the cluster in the layering, so what both compute
lives here, below both: the signing key, the canonical request, the string to sign and the
signature. What only one side does stays with it (parsing and checking an Authorization
header, the canonical query and header forms of a received request).

The names follow AWS's description of the algorithm ("Create a canonical request", "Create a
string to sign", "Derive a signing key"); tests/unit/test_sigv4_signing.py checks them
against AWS's published examples. Pure stdlib.
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import quote

ALGORITHM = "AWS4-HMAC-SHA256"
AMZ_DATE_FORMAT = "%Y%m%dT%H%M%SZ"  # X-Amz-Date; its first 8 characters are the scope's date


def sha256_hex(data: bytes) -> str:
    """The hex SHA-256 a canonical request carries for its body (and of itself, signed)."""
    return hashlib.sha256(data).hexdigest()


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    """The key scoped to one day, region and service: a leaked one signs nothing else."""
    key = _hmac(("AWS4" + secret).encode(), date)
    return _hmac(_hmac(_hmac(key, region), service), "aws4_request")


def credential_scope(date: str, region: str, service: str) -> str:
    return f"{date}/{region}/{service}/aws4_request"


def canonical_request(method: str, path: str, query: str, headers: str, signed_headers: str,
                      payload_hash: str) -> str:
    """`path` is percent-encoded once here: S3 passes the decoded path (S3 signs it encoded
    once), other services the path as sent (they sign it encoded twice). `query` is already
    canonical; `headers` is the canonical block, one `name:value\\n` per signed header."""
    return "\n".join([method.upper(), quote(path or "/", safe="/~"), query, headers,
                      signed_headers, payload_hash])


def string_to_sign(amz_date: str, scope: str, canonical: str) -> str:
    return "\n".join([ALGORITHM, amz_date, scope, sha256_hex(canonical.encode())])


def signature(secret: str, date: str, region: str, service: str, to_sign: str) -> str:
    """The hex signature of `to_sign` with the key derived from `secret`."""
    return hmac.new(signing_key(secret, date, region, service), to_sign.encode(),
                    hashlib.sha256).hexdigest()
