"""runner.cluster.sigv4 against botocore's own signer as the oracle (decision 073)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from unittest import mock

import botocore.auth
import pytest
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from multidict import CIMultiDict

from runner.cluster import sigv4

NOW = datetime(2026, 12, 5, 12, 0, 0, tzinfo=timezone.utc)


def signed(method="GET", url="http://node:9000/2015-03-31/functions/", body=b"",
           key_id="runner", secret="tok", service="lambda", at=NOW, headers=None):
    req = AWSRequest(method=method, url=url, data=body, headers=headers or {})
    with mock.patch.object(botocore.auth, "get_current_datetime",
                           return_value=at.replace(tzinfo=None)):
        botocore.auth.SigV4Auth(Credentials(key_id, secret), service, "us-east-1").add_auth(req)
    prepared = req.prepare()
    path, _, query = prepared.url.split("node:9000", 1)[1].partition("?")
    hdrs = CIMultiDict(prepared.headers.items())
    hdrs.setdefault("Host", "node:9000")
    return method, path, query, hdrs, body


def check(args, secret="tok", now=NOW):
    sigv4.verify(*args, secret, now=now)


@pytest.mark.parametrize("method,url,body", [
    ("GET", "http://node:9000/2015-03-31/functions/?Marker=a%2Fb&MaxItems=5", b""),
    ("POST", "http://node:9000/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A0%3A"
             "function%3Afn/invocations?Qualifier=%24LATEST", b'{"k": "\\u00e9 v"}'),
    ("DELETE", "http://node:9000/2017-03-31/tags/x?tagKeys=a&tagKeys=b%20c", b""),
])
def test_botocore_signatures_verify(method, url, body):
    check(signed(method, url, body))


def test_step_functions_signatures_verify_too():
    check(signed("POST", "http://node:9000/", b"{}", service="states",
                 headers={"X-Amz-Target": "AWSStepFunctions.ListStateMachines"}))


def test_a_wrong_secret_or_tampered_request_is_an_invalid_signature():
    args = signed("POST", body=b"{}")
    with pytest.raises(sigv4.Refused) as info:
        check(args, secret="other")
    assert info.value.error_type == sigv4.INVALID_SIGNATURE
    method, path, query, hdrs, _ = args
    with pytest.raises(sigv4.Refused):
        check((method, path, query, hdrs, b'{"swapped": 1}'))
    with pytest.raises(sigv4.Refused):
        check((method, path.replace("functions", "layers"), query, hdrs, b"{}"))


def test_an_unknown_key_id_is_an_unrecognized_client():
    with pytest.raises(sigv4.Refused) as info:
        check(signed(key_id="AKIDEXAMPLE"))
    assert info.value.error_type == sigv4.UNRECOGNIZED_CLIENT


def test_the_date_must_be_within_fifteen_minutes_either_way():
    check(signed(at=NOW - timedelta(minutes=14)))
    for skew, words in ((-16, "Signature expired"), (16, "not yet current")):
        with pytest.raises(sigv4.Refused) as info:
            check(signed(at=NOW + timedelta(minutes=skew)))
        assert info.value.error_type == sigv4.INVALID_SIGNATURE and words in str(info.value)


def test_a_declared_payload_hash_must_match_the_body():
    method, path, query, hdrs, body = signed("POST", body=b"{}")
    hdrs["X-Amz-Content-Sha256"] = "0" * 64
    with pytest.raises(sigv4.Refused) as info:
        check((method, path, query, hdrs, body))
    assert "x-amz-content-sha256" in str(info.value)
