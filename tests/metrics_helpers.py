"""Reading a Prometheus exposition back in tests: the value of one sample by name and labels."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families


def sample(text: bytes | str, name: str, **labels: str) -> float:
    """The value of the sample `name` whose labels include `labels` (0 if there is none: a
    counter never incremented has no series)."""
    if isinstance(text, bytes):
        text = text.decode()
    total = 0.0
    found = False
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                total += s.value
                found = True
    return total if found else 0.0
