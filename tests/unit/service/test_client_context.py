"""The one client-context decoder behind the REST header and the gRPC Invoke field."""

from __future__ import annotations

import base64
import json

import pytest

from runner.errors import InvalidParameter
from runner.service.client_context import MAX_CLIENT_CONTEXT_BYTES, decode_client_context


def b64(value) -> str:
    return base64.b64encode(json.dumps(value).encode()).decode()


def test_decodes_a_json_object_and_empty_is_none():
    assert decode_client_context(b64({"custom": {"k": "v"}}), "client_context") == {"custom": {"k": "v"}}
    assert decode_client_context("", "client_context") is None
    assert decode_client_context(None, "client_context") is None


@pytest.mark.parametrize("raw", ["not base64 json!", b64([1, 2]), b64("text"),
                                 base64.b64encode(b"{broken").decode()])
def test_refuses_what_is_not_base64_of_an_object_naming_the_field(raw):
    with pytest.raises(InvalidParameter) as info:
        decode_client_context(raw, "client_context")
    assert "client_context" in str(info.value) and "base64 of a JSON object" in str(info.value)


def test_refuses_over_lambdas_size_limit():
    raw = b64({"custom": {"k": "x" * MAX_CLIENT_CONTEXT_BYTES}})
    with pytest.raises(InvalidParameter) as info:
        decode_client_context(raw, "X-Amz-Client-Context")
    assert "X-Amz-Client-Context" in str(info.value) and str(MAX_CLIENT_CONTEXT_BYTES) in str(info.value)
