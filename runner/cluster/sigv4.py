"""AWS Signature Version 4 as a credential for the cluster token (issue 23, decision 073).

boto3 and the AWS CLI cannot send `Authorization: Bearer <RUNNER_TOKEN>`, but they always sign
their requests. So a node whose APIs require the token also accepts a SigV4 signature made
with the access key id `runner` and the secret access key = the token itself: only a holder of
the token can produce it, and the token never crosses the wire.

What is checked, as AWS does: the key id, the credential scope's shape (date matching
X-Amz-Date, `aws4_request` terminator; any region and service, since the client chooses
them and they enter the signing key), X-Amz-Date within 15 minutes of our clock (a captured
request cannot be replayed later), and the signature over the canonical request: method,
path, query, the signed headers (which must include host) and the SHA-256 of the body as
received. x-amz-content-sha256, when sent, must equal that hash (it is signed; the body is
not, so trusting the header alone would let a body be swapped).

The signing key, canonical request and string to sign are computed as the S3 code store's
signer computes them (runner/sigv4_signing.py). Pure stdlib (hashlib/hmac); botocore's signer
serves only as the tests' oracle.
"""

from __future__ import annotations

import hmac
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qsl, quote

from runner.sigv4_signing import (
    ALGORITHM,
    AMZ_DATE_FORMAT,
    canonical_request,
    credential_scope,
    sha256_hex,
    signature,
    string_to_sign,
)

ACCESS_KEY_ID = "runner"
MAX_SKEW = timedelta(minutes=15)

# AWS's own error types and messages (403 for both).
INVALID_SIGNATURE = "InvalidSignatureException"
UNRECOGNIZED_CLIENT = "UnrecognizedClientException"
_MISMATCH = ("The request signature we calculated does not match the signature you provided. "
             "Check your AWS Secret Access Key and signing method: the secret is RUNNER_TOKEN "
             "(docs/cluster.md).")


class Refused(Exception):
    """A SigV4 request that does not verify: `error_type` is the AWS error name."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type


def is_sigv4(authorization: str | None) -> bool:
    return bool(authorization) and authorization.startswith(ALGORITHM + " ")


def _parse(authorization: str) -> dict[str, str]:
    fields = {}
    for part in authorization[len(ALGORITHM) + 1:].split(","):
        key, sep, value = part.strip().partition("=")
        if sep:
            fields[key] = value
    missing = [k for k in ("Credential", "SignedHeaders", "Signature") if k not in fields]
    if missing:
        raise Refused(INVALID_SIGNATURE, f"Authorization header requires {', '.join(missing)} "
                      "(AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...)")
    return fields


def _canonical_query(query: str) -> str:
    # Names and values decoded then re-encoded the AWS way, sorted by name then value.
    pairs = [(quote(k, safe="-_.~"), quote(v, safe="-_.~"))
             for k, v in parse_qsl(query, keep_blank_values=True)]
    return "&".join(f"{k}={v}" for k, v in sorted(pairs))


def _canonical_headers(headers, names: list[str]) -> str:
    lines = []
    for name in names:
        values = headers.getall(name, []) if hasattr(headers, "getall") else (
            [headers[name]] if name in headers else [])
        if not values:
            raise Refused(INVALID_SIGNATURE, f"signed header {name!r} is missing from the request")
        lines.append(name + ":" + ",".join(" ".join(v.split()) for v in values) + "\n")
    return "".join(lines)


def verify(method: str, raw_path: str, query: str, headers, body: bytes, secret: str,
           now: datetime | None = None) -> None:
    """Raise Refused unless the request's SigV4 signature verifies with `secret`.

    raw_path is the path as sent (still percent-encoded); headers is case-insensitive."""
    fields = _parse(headers.get("Authorization", ""))
    scope = fields["Credential"].split("/")
    if len(scope) != 5 or scope[4] != "aws4_request":
        raise Refused(INVALID_SIGNATURE, "Credential must be KEYID/YYYYMMDD/region/service/"
                      "aws4_request")
    key_id, date, region, service, _ = scope
    if not hmac.compare_digest(key_id.encode(), ACCESS_KEY_ID.encode()):
        raise Refused(UNRECOGNIZED_CLIENT, "The security token included in the request is "
                      f"invalid: use access key id {ACCESS_KEY_ID!r} and RUNNER_TOKEN as the "
                      "secret access key")
    amz_date = headers.get("X-Amz-Date", "")
    try:
        when = datetime.strptime(amz_date, AMZ_DATE_FORMAT).replace(tzinfo=timezone.utc)
    except ValueError:
        raise Refused(INVALID_SIGNATURE, "X-Amz-Date must be YYYYMMDDTHHMMSSZ, got "
                      f"{amz_date!r}") from None
    if date != amz_date[:8]:
        raise Refused(INVALID_SIGNATURE, f"Credential date {date} does not match X-Amz-Date "
                      f"{amz_date}")
    now = now or datetime.now(timezone.utc)
    if when < now - MAX_SKEW:
        raise Refused(INVALID_SIGNATURE, f"Signature expired: {amz_date} is now earlier than "
                      f"{(now - MAX_SKEW).strftime(AMZ_DATE_FORMAT)} "
                      f"({now.strftime(AMZ_DATE_FORMAT)} - 15 min.)")
    if when > now + MAX_SKEW:
        raise Refused(INVALID_SIGNATURE, f"Signature not yet current: {amz_date} is still later "
                      f"than {(now + MAX_SKEW).strftime(AMZ_DATE_FORMAT)} "
                      f"({now.strftime(AMZ_DATE_FORMAT)} + 15 min.)")
    names = fields["SignedHeaders"].split(";")
    if "host" not in names:
        raise Refused(INVALID_SIGNATURE, "SignedHeaders must include host")
    payload_hash = sha256_hex(body)
    declared = headers.get("X-Amz-Content-Sha256")
    if declared is not None and declared != payload_hash:
        raise Refused(INVALID_SIGNATURE, "x-amz-content-sha256 does not match the body's SHA-256")
    # Non-S3 services sign the path encoded once more (canonical_request encodes the wire form).
    canonical = canonical_request(method, raw_path, _canonical_query(query),
                                  _canonical_headers(headers, names), fields["SignedHeaders"],
                                  payload_hash)
    to_sign = string_to_sign(amz_date, credential_scope(date, region, service), canonical)
    expected = signature(secret, date, region, service, to_sign)
    if not hmac.compare_digest(expected.encode(), fields["Signature"].encode()):
        raise Refused(INVALID_SIGNATURE, _MISMATCH)
