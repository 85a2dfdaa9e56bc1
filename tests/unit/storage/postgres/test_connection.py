"""The connections a node holds (connection.POOLS): every PostgreSQL store takes its pool
size from that one table, so CONNECTIONS_PER_NODE and max_connections() stay true."""

from __future__ import annotations

import glob
import os
import re

import pytest

from runner.storage.postgres import connection
from tests.conftest import ROOT


def test_every_store_sizes_its_pool_from_the_table():
    opened = {}
    for path in glob.glob(os.path.join(ROOT, "runner", "storage", "postgres", "*.py")):
        with open(path) as f:
            text = f.read()
        module = os.path.basename(path)[:-3]
        pools = re.findall(r"= Database\(url", text)
        sized = re.findall(r'= Database\(url, SCHEMA, size=POOLS\["(\w+)"\]', text)
        assert len(sized) == len(pools) and set(sized) <= {module}, path
        if sized:
            opened[module] = connection.POOLS[module]
    assert opened == connection.POOLS


def test_connections_per_node_and_the_max_connections_guidance():
    assert connection.CONNECTIONS_PER_NODE == 34 and connection.POOLS["workflows"] == 4
    assert connection.POOLS["push"] == connection.POOLS["metric_series"] == 2
    assert connection.max_connections(1) == 44
    assert connection.max_connections(100) == 3410
    with pytest.raises(ValueError, match="nodes"):
        connection.max_connections(0)
