"""S3's notification configuration rules, as they apply to a Lambda destination.

* Event types: `s3:ObjectCreated:*` or one of Put, Post, Copy, CompleteMultipartUpload;
  `s3:ObjectRemoved:*` or Delete, DeleteMarkerCreated. A record's `eventName` is the type
  without "s3:" (e.g. "ObjectCreated:Put").
* Filters: at most one prefix and one suffix, matched against the decoded object key.
* Two configurations of one bucket that share an event type and whose prefixes overlap (one
  is a prefix of the other, or either is empty) and whose suffixes overlap (likewise) are
  refused: S3 answers "Configurations overlap" (InvalidArgument), because one upload would
  invoke twice and its order would be undefined.
"""

from __future__ import annotations

from runner.errors import InvalidParameter

FAMILIES = {
    "ObjectCreated": ("Put", "Post", "Copy", "CompleteMultipartUpload"),
    "ObjectRemoved": ("Delete", "DeleteMarkerCreated"),
}
MAX_FILTER = 1024  # S3's key length limit, for prefix and suffix


def check_event_type(t: str) -> str:
    parts = t.split(":") if isinstance(t, str) else []
    if len(parts) == 3 and parts[0] == "s3" and parts[1] in FAMILIES and \
            (parts[2] == "*" or parts[2] in FAMILIES[parts[1]]):
        return t
    known = ", ".join(f"s3:{f}:*" for f in FAMILIES)
    raise InvalidParameter("events", f"{t!r} is not an S3 event type this runner delivers; "
                           f"use {known} or one of their members, e.g. s3:ObjectCreated:Put")


def check_filters(prefix: str, suffix: str) -> None:
    for name, v in (("prefix", prefix), ("suffix", suffix)):
        if not isinstance(v, str) or len(v.encode()) > MAX_FILTER:
            raise InvalidParameter(name, f"must be a string of at most {MAX_FILTER} bytes")


def type_matches(configured: str, event_name: str) -> bool:
    """Does an event type ("s3:ObjectCreated:*") cover a record's eventName?"""
    _, family, member = configured.split(":")
    fam, _, mem = event_name.partition(":")
    return fam == family and (member == "*" or member == mem)


def types_overlap(a: str, b: str) -> bool:
    _, fa, ma = a.split(":")
    _, fb, mb = b.split(":")
    return fa == fb and (ma == "*" or mb == "*" or ma == mb)


def filters_overlap(prefix_a: str, suffix_a: str, prefix_b: str, suffix_b: str) -> bool:
    prefixes = prefix_a.startswith(prefix_b) or prefix_b.startswith(prefix_a)
    suffixes = suffix_a.endswith(suffix_b) or suffix_b.endswith(suffix_a)
    return prefixes and suffixes


def key_matches(key: str, prefix: str, suffix: str) -> bool:
    return key.startswith(prefix) and key.endswith(suffix)
