"""deploy/kubernetes/ validated offline: every resource against the newest Kubernetes schema
kubernetes-validate knows, in strict mode (unknown fields are errors), and the manifests
consistent with each other and with `runner serve`'s options."""

from __future__ import annotations

import glob
import os
import re

import kubernetes_validate
import pytest
import yaml

from runner.cli.main import build_parser
from tests.conftest import ROOT

FILES = sorted(glob.glob(os.path.join(ROOT, "deploy", "kubernetes", "*.yaml")))
VERSION = kubernetes_validate.latest_version()


def docs():
    out = []
    for path in FILES:
        with open(path) as f:
            out += [(os.path.basename(path), d) for d in yaml.safe_load_all(f) if d]
    return out


def by_kind(kind):
    return [d for _, d in docs() if d["kind"] == kind]


def test_the_expected_resources_are_there():
    kinds = {d["kind"] for _, d in docs()}
    assert {"Namespace", "ConfigMap", "Secret", "Deployment", "Service",
            "HorizontalPodAutoscaler", "StatefulSet"} <= kinds


@pytest.mark.parametrize("name,doc", docs(), ids=lambda x: x if isinstance(x, str) else "")
def test_strict_schema(name, doc):
    kubernetes_validate.validate(doc, VERSION, strict=True)  # raises on any error


def test_services_select_the_nodes_and_probes_use_grpc_health():
    [deployment] = [d for d in by_kind("Deployment") if d["metadata"]["name"] == "runner"]
    pod = deployment["spec"]["template"]
    labels = pod["metadata"]["labels"]
    services = [s for s in by_kind("Service") if s["metadata"]["name"].startswith("runner")
                and "postgres" not in s["metadata"]["name"]]
    assert {s["spec"].get("clusterIP") for s in services} >= {None, "None"}  # a headless one
    for s in services:
        assert s["spec"]["selector"].items() <= labels.items()
    [container] = pod["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["grpc"]["port"] == ports["grpc"]
    hpa = by_kind("HorizontalPodAutoscaler")[0]
    assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]


def test_the_node_command_line_is_one_runner_serve_accepts():
    [deployment] = [d for d in by_kind("Deployment") if d["metadata"]["name"] == "runner"]
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["runner", "serve"]
    config = by_kind("ConfigMap")[0]["data"]
    secrets = {}
    for s in by_kind("Secret"):
        secrets.update(s["stringData"])
    env = {"POD_IP": "10.0.0.7", **config, **secrets}
    args = [re.sub(r"\$\((\w+)\)", lambda m: env[m.group(1)], a) for a in container["args"]]
    parsed = build_parser().parse_args(["serve", *args])
    assert parsed.state.startswith("postgresql://") and parsed.port == 50051
    assert parsed.peer_host == "10.0.0.7" and parsed.host == "0.0.0.0"
    assert "RUNNER_TOKEN" in secrets  # beyond loopback a node needs the token


def test_the_reference_postgres_takes_every_pool_of_the_most_pods_the_hpa_makes():
    from runner.storage.postgres.connection import max_connections

    [hpa] = by_kind("HorizontalPodAutoscaler")
    [config] = by_kind("ConfigMap")
    nodes = hpa["spec"]["maxReplicas"] * int(config["data"]["RUNNER_WORKERS"])
    [postgres] = [d for d in by_kind("StatefulSet") if "postgres" in d["metadata"]["name"]]
    args = " ".join(postgres["spec"]["template"]["spec"]["containers"][0]["args"])
    assert int(re.search(r"max_connections=(\d+)", args).group(1)) >= max_connections(nodes)
