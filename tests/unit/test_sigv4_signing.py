"""runner/sigv4_signing.py against AWS's published SigV4 examples, and both of its users on
one request (the S3 store's signer, the cluster's verifier)."""

from __future__ import annotations

from datetime import datetime, timezone
from unittest import mock

from multidict import CIMultiDict

from runner import sigv4_signing as s
from runner.cluster import sigv4
from runner.storage.s3_blobs import S3BlobStore, S3Location

SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"  # AWS's example secret


def test_signing_key_matches_aws_documented_example():
    # "Examples of how to derive a signing key for Signature Version 4" (AWS General Reference).
    key = s.signing_key(SECRET, "20120215", "us-east-1", "iam")
    assert key.hex() == "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d"


def test_get_vanilla_from_the_aws_sigv4_test_suite():
    # aws-sig-v4-test-suite/get-vanilla: GET / with Host and X-Amz-Date signed, empty body.
    amz_date = "20150830T123600Z"
    headers = "host:example.amazonaws.com\nx-amz-date:20150830T123600Z\n"
    canonical = s.canonical_request("GET", "/", "", headers, "host;x-amz-date",
                                    s.sha256_hex(b""))
    assert canonical == ("GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n"
                         "\nhost;x-amz-date\n"
                         "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    scope = s.credential_scope("20150830", "us-east-1", "service")
    to_sign = s.string_to_sign(amz_date, scope, canonical)
    assert to_sign == ("AWS4-HMAC-SHA256\n20150830T123600Z\n"
                       "20150830/us-east-1/service/aws4_request\n"
                       "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63")
    assert s.signature(SECRET, "20150830", "us-east-1", "service", to_sign) == (
        "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31")


def test_what_the_s3_store_signs_the_cluster_verifier_accepts():
    # One request signed by storage/s3_blobs.py and checked by cluster/sigv4.py: the two share
    # the primitives, so they must agree (S3 encodes the path once: a path with no character
    # that needs encoding reads the same either way).
    now = datetime(2026, 12, 6, 7, 0, 0, tzinfo=timezone.utc)
    loc = S3Location("code", "", "http://node:9000", "us-east-1", sigv4.ACCESS_KEY_ID, "tok")
    body = b'{"k": 1}'
    with mock.patch("runner.storage.s3_blobs.datetime") as clock:
        clock.now.return_value = now
        headers = S3BlobStore(loc)._signed("PUT", "/code/abc", body, {"x-amz-meta-kind": "py"})
    sigv4.verify("PUT", "/code/abc", "", CIMultiDict(headers), body, "tok", now=now)
