"""Lambda's LoggingConfig on FunctionConfig (model.py): formats, levels, and the rule that
levels need the JSON format."""

from __future__ import annotations

import pytest

from runner.errors import InvalidParameter
from runner.model import FunctionConfig


def test_defaults_are_text_and_round_trip():
    c = FunctionConfig(runtime="python", handler="app.handler")
    assert (c.log_format, c.application_log_level, c.system_log_level) == ("Text", "", "")
    j = c.with_changes(log_format="JSON", application_log_level="WARN", system_log_level="DEBUG")
    assert FunctionConfig.from_dict(j.to_dict()) == j


@pytest.mark.parametrize("changes, field", [
    ({"log_format": "json"}, "log_format"),
    ({"log_format": "JSON", "application_log_level": "VERBOSE"}, "application_log_level"),
    ({"log_format": "JSON", "system_log_level": "ERROR"}, "system_log_level"),
    ({"application_log_level": "DEBUG"}, "application_log_level"),  # Text format
])
def test_bad_logging_config_names_the_field(changes, field):
    with pytest.raises(InvalidParameter) as exc:
        FunctionConfig(runtime="python", handler="app.handler", **changes)
    assert exc.value.message.startswith(field)
