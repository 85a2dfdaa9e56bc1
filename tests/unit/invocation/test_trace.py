"""Trace headers -> the guest's _X_AMZN_TRACE_ID (invocation/trace.py)."""

from __future__ import annotations

from runner.invocation.trace import from_headers, from_message, report_suffix, traceparent

W3C = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
XRAY = "Root=1-4bf92f35-77b34da6a3ce929d0e0e4736;Parent=00f067aa0ba902b7;Sampled=1"


def test_traceparent_maps_to_xray_and_back():
    assert from_headers(None, W3C) == XRAY
    assert traceparent(XRAY) == W3C
    assert from_headers(None, W3C[:-2] + "00").endswith("Sampled=0")


def test_amzn_header_wins_and_bad_values_are_ignored():
    own = "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1"
    assert from_headers(own, W3C) == own
    assert from_headers("Root=has space", W3C) == XRAY  # malformed: the other header counts
    assert from_headers("Root=" + "a" * 300, None) is None  # longer than the guest's buffer
    assert from_headers(None, "00-" + "0" * 32 + "-00f067aa0ba902b7-01") is None  # all-zero id
    assert from_headers(None, "ff-" + W3C[3:]) is None  # version ff is invalid
    assert from_headers(None, "garbage") is None and from_headers(None, None) is None


def test_report_suffix_is_lambdas():
    assert report_suffix(XRAY) == ("XRAY TraceId: 1-4bf92f35-77b34da6a3ce929d0e0e4736\t"
                                   "SegmentId: 00f067aa0ba902b7\tSampled: true")


def test_a_message_header_is_matched_case_insensitively_and_bad_ones_ignored():
    assert from_message({"TraceParent": W3C}) == XRAY
    assert from_message({"x-amzn-trace-id": XRAY, "traceparent": "garbage"}) == XRAY
    assert from_message({"traceparent": "garbage"}) == ""
    assert from_message({"data": "x"}) == "" and from_message(None) == ""
