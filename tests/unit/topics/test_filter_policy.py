"""SNS filter policies on message attributes, with SNS's documented examples."""

import pytest

from runner.errors import InvalidParameter
from runner.topics.filter_policy import check, matches
from runner.topics.service import normalize_attributes

MSG = normalize_attributes({"store": "example_corp", "event": "order_placed",
                            "customer_interests": ["soccer", "rugby", "hockey"],
                            "price_usd": 210.75, "encrypted": "no"})


@pytest.mark.parametrize("policy,expected", [
    ({"store": ["example_corp"]}, True),
    ({"store": ["other"]}, False),
    ({"store": ["example_corp"], "event": ["order_cancelled"]}, False),  # AND across keys
    ({"event": ["order_cancelled", "order_placed"]}, True),  # OR within a key
    ({"customer_interests": ["rugby"]}, True),  # String.Array: any element
    ({"customer_interests": ["baseball"]}, False),
    ({"price_usd": [210.75]}, True),
    ({"price_usd": [{"numeric": [">=", 100]}]}, True),
    ({"price_usd": [{"numeric": [">", 0, "<=", 150]}]}, False),
    ({"price_usd": [{"numeric": ["=", 210.75]}]}, True),
    ({"store": [{"numeric": [">", 0]}]}, False),  # numeric never matches a String
    ({"event": [{"prefix": "order-"}]}, False),
    ({"event": [{"prefix": "order_"}]}, True),
    ({"event": [{"suffix": "_placed"}]}, True),
    ({"store": [{"equals-ignore-case": "EXAMPLE_CORP"}]}, True),
    ({"event": [{"anything-but": "order_cancelled"}]}, True),
    ({"event": [{"anything-but": ["order_placed", "x"]}]}, False),
    ({"event": [{"anything-but": {"prefix": "order"}}]}, False),
    ({"price_usd": [{"anything-but": [100, 200]}]}, True),
    ({"missing": [{"anything-but": "x"}]}, False),  # anything-but needs the attribute
    ({"encrypted": [{"exists": True}]}, True),
    ({"missing": [{"exists": False}]}, True),
    ({"missing": [{"exists": True}]}, False),
    ({"missing": ["x"]}, False),
    ({"missing": ["x", {"exists": False}]}, True),
])
def test_policy(policy, expected):
    assert matches(check(policy), MSG) is expected


def test_no_policy_matches_everything():
    assert matches(None, {}) and matches(None, MSG)


@pytest.mark.parametrize("policy", [
    {}, [], {"a": []}, {"a": "x"}, {"a": [True]}, {"a": [None]}, {"a": [{"bogus": 1}]},
    {"a": [{"numeric": [">"]}]}, {"a": [{"numeric": ["~", 1]}]}, {"a": [{"prefix": 1}]},
    {"a": [{"exists": "yes"}]}, {"a": [{"anything-but": {"suffix": "x"}}]},
    {str(i): ["x"] for i in range(6)},
    {"a": list("abcdef"), "b": list("abcdef"), "c": list("abcdef")},  # 216 combinations
])
def test_bad_policies_are_refused(policy):
    with pytest.raises(InvalidParameter, match="filter_policy"):
        check(policy)


def test_attribute_forms():
    api = normalize_attributes({"a": {"DataType": "Number", "StringValue": "5"}})
    assert api == {"a": {"Type": "Number", "Value": "5"}}
    assert normalize_attributes({"l": ["x", 1]})["l"] == {"Type": "String.Array",
                                                          "Value": '["x", 1]'}
    for bad in ({"a": True}, {"a": {"DataType": "Date", "StringValue": "x"}}, ["a"]):
        with pytest.raises(InvalidParameter, match="attributes"):
            normalize_attributes(bad)
