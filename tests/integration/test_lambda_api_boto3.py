"""The Lambda management API (issue 20) driven by boto3's own Lambda client, unchanged: the
whole life cycle (create, get, list with pagination, update code and configuration with
RevisionId, publish, aliases with weights, concurrency, layers, delete), with boto3's waiters
and Lambda's error types."""

from __future__ import annotations

import base64
import io
import json
import zipfile

import pytest

from runner.confinement import namespaces
from runner.invocation.code_input import zip_directory
from tests.conftest import guest
from tests.integration.http_fixtures import http_server, lam  # noqa: F401 (fixtures)


def zipped(files: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, text in files.items():
            zf.writestr(name, text)
    return buf.getvalue()


ECHO = zip_directory(guest("python", "echo"))
V2 = zipped({"app.py": "def handler(event, context):\n    return {'v': 2, 'event': event}\n"})




def create(lam, name="fn", code=ECHO, **kw):
    args = dict(FunctionName=name, Runtime="python3.12", Role="arn:aws:iam::000000000000:role/r",
                Handler="app.handler", Code={"ZipFile": code})
    args.update(kw)
    return lam.create_function(**args)


def test_create_get_invoke_and_waiters(lam):
    out = create(lam, Description="echoes", MemorySize=256, Timeout=5,
                 Environment={"Variables": {"A": "1"}}, EphemeralStorage={"Size": 1024})
    assert out["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert out["FunctionName"] == "fn" and out["Runtime"] == "python3.12"
    assert out["FunctionArn"] == "arn:aws:lambda:us-east-1:000000000000:function:fn"
    assert out["State"] == "Active" and out["LastUpdateStatus"] == "Successful"
    assert out["Version"] == "$LATEST" and out["MemorySize"] == 256 and out["Timeout"] == 5
    assert out["Environment"] == {"Variables": {"A": "1"}}
    assert out["EphemeralStorage"] == {"Size": 1024} and out["Description"] == "echoes"
    assert out["CodeSize"] == len(ECHO) and len(out["CodeSha256"]) == 44  # base64 of sha256
    lam.get_waiter("function_active_v2").wait(FunctionName="fn",
                                              WaiterConfig={"Delay": 1, "MaxAttempts": 2})
    got = lam.get_function(FunctionName="fn")
    assert got["Configuration"]["RevisionId"] == out["RevisionId"]
    assert lam.get_function_configuration(FunctionName="fn")["Role"].endswith("role/r")
    resp = lam.invoke(FunctionName="fn", Payload=b'{"x": 1}')
    assert json.loads(resp["Payload"].read()) == {"x": 1}
    with pytest.raises(lam.exceptions.ResourceConflictException):
        create(lam)


def test_errors_have_lambda_types(lam):
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_function(FunctionName="missing")
    with pytest.raises(lam.exceptions.InvalidParameterValueException) as info:
        create(lam, Timeout=1000)
    assert "timeout_s" in info.value.response["Error"]["Message"]
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.delete_function(FunctionName="missing")
    # Not served: answered with Lambda's error document, never a bare 404.
    with pytest.raises(lam.exceptions.ClientError) as info:
        lam.get_function_url_config(FunctionName="x")
    assert info.value.response["Error"]["Code"] == "UnknownOperationException"


def test_update_code_and_configuration_with_revision_id(lam):
    first = create(lam)
    up = lam.update_function_code(FunctionName="fn", ZipFile=V2, RevisionId=first["RevisionId"])
    assert up["CodeSha256"] != first["CodeSha256"] and up["RevisionId"] != first["RevisionId"]
    lam.get_waiter("function_updated_v2").wait(FunctionName="fn",
                                               WaiterConfig={"Delay": 1, "MaxAttempts": 2})
    assert json.loads(lam.invoke(FunctionName="fn", Payload=b"1")["Payload"].read())["v"] == 2
    with pytest.raises(lam.exceptions.PreconditionFailedException):
        lam.update_function_configuration(FunctionName="fn", Timeout=9,
                                          RevisionId=first["RevisionId"])
    conf = lam.update_function_configuration(FunctionName="fn", Timeout=9, Description="d",
                                             Environment={"Variables": {"B": "2"}},
                                             RevisionId=up["RevisionId"])
    assert conf["Timeout"] == 9 and conf["Description"] == "d"
    assert conf["Environment"] == {"Variables": {"B": "2"}}  # replaced, as on Lambda
    assert conf["CodeSha256"] == up["CodeSha256"]


def test_list_functions_pages(lam):
    for i in range(5):
        create(lam, f"f{i}")
    names, marker, pages = [], None, 0
    while True:
        kw = {"MaxItems": 2} | ({"Marker": marker} if marker else {})
        page = lam.list_functions(**kw)
        pages += 1
        names += [f["FunctionName"] for f in page["Functions"]]
        marker = page.get("NextMarker")
        if not marker:
            break
    assert names == [f"f{i}" for i in range(5)] and pages == 3
    paginated = [f["FunctionName"] for p in lam.get_paginator("list_functions").paginate(
        PaginationConfig={"PageSize": 2}) for f in p["Functions"]]
    assert paginated == names


def test_publish_versions_and_delete_one(lam):
    create(lam)
    v1 = lam.publish_version(FunctionName="fn", Description="first")
    assert v1["Version"] == "1" and v1["FunctionArn"].endswith(":function:fn:1")
    lam.get_waiter("published_version_active").wait(FunctionName="fn", Qualifier="1",
                                                    WaiterConfig={"Delay": 1, "MaxAttempts": 2})
    lam.update_function_code(FunctionName="fn", ZipFile=V2, Publish=True)
    versions = [v["Version"] for v in lam.list_versions_by_function(FunctionName="fn")["Versions"]]
    assert versions == ["$LATEST", "1", "2"]
    lam.delete_function(FunctionName="fn", Qualifier="1")
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_function(FunctionName="fn", Qualifier="1")
    assert json.loads(lam.invoke(FunctionName="fn", Qualifier="2",
                                 Payload=b"3")["Payload"].read())["v"] == 2
    lam.delete_function(FunctionName="fn")
    assert lam.list_functions()["Functions"] == []


def test_aliases_crud_and_routing(lam):
    create(lam)
    lam.publish_version(FunctionName="fn")
    lam.update_function_code(FunctionName="fn", ZipFile=V2, Publish=True)
    a = lam.create_alias(FunctionName="fn", Name="live", FunctionVersion="1")
    assert a["AliasArn"].endswith(":function:fn:live") and a["FunctionVersion"] == "1"
    resp = lam.invoke(FunctionName="fn", Qualifier="live", Payload=b"{}")
    assert resp["ExecutedVersion"] == "1"
    with pytest.raises(lam.exceptions.ResourceConflictException):
        lam.create_alias(FunctionName="fn", Name="live", FunctionVersion="1")
    with pytest.raises(lam.exceptions.ResourceConflictException):  # in use by the alias
        lam.delete_function(FunctionName="fn", Qualifier="1")
    up = lam.update_alias(FunctionName="fn", Name="live", FunctionVersion="2",
                          RoutingConfig={"AdditionalVersionWeights": {"1": 0.5}})
    assert up["RoutingConfig"] == {"AdditionalVersionWeights": {"1": 0.5}}
    with pytest.raises(lam.exceptions.PreconditionFailedException):
        lam.update_alias(FunctionName="fn", Name="live", RevisionId=a["RevisionId"])
    seen = {lam.invoke(FunctionName="fn", Qualifier="live", Payload=b"{}")["ExecutedVersion"]
            for _ in range(40)}
    assert seen == {"1", "2"}  # 2**-39 chance of a false failure
    assert [x["Name"] for x in lam.list_aliases(FunctionName="fn")["Aliases"]] == ["live"]
    assert lam.get_alias(FunctionName="fn", Name="live")["FunctionVersion"] == "2"
    lam.delete_alias(FunctionName="fn", Name="live")
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.invoke(FunctionName="fn", Qualifier="live", Payload=b"{}")


def test_concurrency_event_config_and_account(http_server, lam):  # noqa: F811
    runner = http_server[0]
    create(lam)
    assert not runner.get("fn").config.concurrency_reserved
    assert lam.put_function_concurrency(FunctionName="fn", ReservedConcurrentExecutions=3)[
        "ReservedConcurrentExecutions"] == 3
    assert lam.get_function_concurrency(FunctionName="fn")["ReservedConcurrentExecutions"] == 3
    assert runner.get("fn").config.concurrency_reserved  # held at its home (decision 079)
    lam.delete_function_concurrency(FunctionName="fn")
    assert lam.get_function_concurrency(FunctionName="fn")["ReservedConcurrentExecutions"] == 10
    assert not runner.get("fn").config.concurrency_reserved
    lam.put_provisioned_concurrency_config(FunctionName="fn", Qualifier="$LATEST",
                                           ProvisionedConcurrentExecutions=1)
    got = lam.get_provisioned_concurrency_config(FunctionName="fn", Qualifier="$LATEST")
    assert got["Status"] == "READY" and got["AllocatedProvisionedConcurrentExecutions"] == 1
    listed = lam.list_provisioned_concurrency_configs(FunctionName="fn")
    assert [c["RequestedProvisionedConcurrentExecutions"]
            for c in listed["ProvisionedConcurrencyConfigs"]] == [1]
    lam.delete_provisioned_concurrency_config(FunctionName="fn", Qualifier="$LATEST")
    cfg = lam.put_function_event_invoke_config(FunctionName="fn", MaximumRetryAttempts=0)
    assert cfg["MaximumRetryAttempts"] == 0 and cfg["MaximumEventAgeInSeconds"] == 21600
    assert lam.get_function_event_invoke_config(FunctionName="fn")["MaximumRetryAttempts"] == 0
    account = lam.get_account_settings()
    assert account["AccountUsage"]["FunctionCount"] == 1


def test_layers(lam):
    content = zipped({"python/shared_mod.py": "VALUE = 42\n"})
    lv = lam.publish_layer_version(LayerName="shared", Content={"ZipFile": content},
                                   CompatibleRuntimes=["python3.12"])
    assert lv["Version"] == 1 and lv["LayerVersionArn"].endswith(":layer:shared:1")
    assert lam.publish_layer_version(LayerName="shared", Content={"ZipFile": content})[
        "Version"] == 2
    assert [v["Version"] for v in lam.list_layer_versions(LayerName="shared")["LayerVersions"]] \
        == [2, 1]
    layers = lam.list_layers()["Layers"]
    assert [x["LayerName"] for x in layers] == ["shared"]
    assert layers[0]["LatestMatchingVersion"]["Version"] == 2
    assert lam.get_layer_version_by_arn(Arn=lv["LayerVersionArn"])["Version"] == 1
    fn = create(lam, Layers=[lv["LayerVersionArn"]])
    assert fn["Layers"] == [{"Arn": lv["LayerVersionArn"], "CodeSize": len(content)}]
    lam.delete_layer_version(LayerName="shared", VersionNumber=1)
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_layer_version(LayerName="shared", VersionNumber=1)
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        create(lam, "other", Layers=[lv["LayerVersionArn"]])


def test_function_routes_never_capture_api_paths(http_server, lam):  # noqa: F811
    runner = http_server[0]
    create(lam)
    runner.add_route("ANY", "/{proxy+}", "fn")
    # Management calls still reach the API, not the function behind ANY /{proxy+}.
    assert lam.get_function(FunctionName="fn")["Configuration"]["FunctionName"] == "fn"
    with pytest.raises(lam.exceptions.ClientError) as info:
        lam.list_event_source_mappings()
    assert info.value.response["Error"]["Code"] == "UnknownOperationException"
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_layers_are_importable_at_opt(lam):
    """Python: /opt/python and its site-packages on sys.path; Node: NODE_PATH reaches
    /opt/nodejs/node_modules; a later layer's file replaces an earlier one's."""
    base = lam.publish_layer_version(LayerName="base", Content={"ZipFile": zipped({
        "python/shared_mod.py": "VALUE = 'base'\n",
        "python/lib/python3.11/site-packages/sitepkg.py": "OK = True\n",
        "nodejs/node_modules/shared-js/index.js": "module.exports = 'base';\n"})})
    over = lam.publish_layer_version(LayerName="over", Content={"ZipFile": zipped({
        "python/shared_mod.py": "VALUE = 'over'\n"})})
    arns = [base["LayerVersionArn"], over["LayerVersionArn"]]
    create(lam, "py", zipped({"app.py": (
        "import os, sys, shared_mod\n"
        "def handler(event, context):\n"
        "    import sitepkg\n"
        "    return {'value': shared_mod.VALUE, 'file': shared_mod.__file__,\n"
        "            'site': sitepkg.OK, 'leak': os.environ.get('_RUNNER_OPT')}\n")}),
        Runtime="python3.11", Layers=arns)
    out = json.loads(lam.invoke(FunctionName="py", Payload=b"{}")["Payload"].read())
    assert out["value"] == "over" and out["site"] is True and out["leak"] is None
    assert out["file"].endswith("/python/shared_mod.py")
    if namespaces.mode() != "off":  # in the sandbox, where Lambda puts layers
        assert out["file"] == "/opt/python/shared_mod.py"
    create(lam, "js", zipped({"index.js": (
        "exports.handler = async () => ({value: require('shared-js'), "
        "path: process.env.NODE_PATH});\n")}),
        Runtime="nodejs20.x", Handler="index.handler", Layers=[arns[0]])
    out = json.loads(lam.invoke(FunctionName="js", Payload=b"{}")["Payload"].read())
    assert out["value"] == "base" and "nodejs/node_modules" in out["path"]


def test_esm_handler_imports_a_package_from_a_layer(lam):
    """ES modules ignore NODE_PATH; Lambda still resolves an .mjs handler's bare import from
    /opt/nodejs/node_modules. The code's own node_modules comes first; a missing package is
    still Runtime.ImportModuleError."""
    layer = lam.publish_layer_version(LayerName="esm", Content={"ZipFile": zipped({
        "nodejs/node_modules/cjs-pkg/index.js": "module.exports = 'cjs from layer';\n",
        "nodejs/node_modules/esm-pkg/package.json": '{"type": "module", "exports": "./main.js"}',
        "nodejs/node_modules/esm-pkg/main.js": "export const where = 'layer';\n",
        "nodejs/node_modules/both/index.js": "module.exports = 'layer';\n"})})
    arn = layer["LayerVersionArn"]
    create(lam, "mjs", zipped({
        "index.mjs": ("import cjs from 'cjs-pkg';\nimport { where } from 'esm-pkg';\n"
                      "import both from 'both';\n"
                      "export const handler = async () => ({cjs, where, both});\n"),
        "node_modules/both/index.js": "module.exports = 'code';\n"}),
        Runtime="nodejs20.x", Handler="index.handler", Layers=[arn])
    out = json.loads(lam.invoke(FunctionName="mjs", Payload=b"{}")["Payload"].read())
    assert out == {"cjs": "cjs from layer", "where": "layer", "both": "code"}
    create(lam, "missing", zipped({"index.mjs": (
        "import x from 'not-anywhere';\nexport const handler = async () => x;\n")}),
        Runtime="nodejs20.x", Handler="index.handler", Layers=[arn])
    resp = lam.invoke(FunctionName="missing", Payload=b"{}")
    assert resp["FunctionError"] == "Unhandled"
    assert json.loads(resp["Payload"].read())["errorType"] == "Runtime.ImportModuleError"


def test_client_context_reaches_python_and_node(lam):
    cc = {"client": {"installation_id": "inst-1", "app_title": "app"},
          "custom": {"k": "v"}, "env": {"platform": "test"}}
    header = base64.b64encode(json.dumps(cc).encode()).decode()
    create(lam, "py", zipped({"app.py": (
        "def handler(event, context):\n"
        "    c = context.client_context\n"
        "    return {'custom': c and c.custom, 'inst': c and c.client.installation_id,\n"
        "            'identity': context.identity.cognito_identity_id}\n")}))
    out = json.loads(lam.invoke(FunctionName="py", ClientContext=header)["Payload"].read())
    assert out == {"custom": {"k": "v"}, "inst": "inst-1", "identity": None}
    out = json.loads(lam.invoke(FunctionName="py")["Payload"].read())  # and none again after
    assert out["custom"] is None
    create(lam, "js", zipped({"index.js": (
        "exports.handler = async (e, ctx) => ({cc: ctx.clientContext || null});\n")}),
        Runtime="nodejs20.x", Handler="index.handler")
    out = json.loads(lam.invoke(FunctionName="js", ClientContext=header)["Payload"].read())
    assert out == {"cc": cc}
    with pytest.raises(lam.exceptions.InvalidParameterValueException):
        lam.invoke(FunctionName="py", ClientContext="not base64 json!")


STREAMING_JS = """
exports.handler = awslambda.streamifyResponse(async (event, responseStream, context) => {
  const http = awslambda.HttpResponseStream.from(responseStream, {statusCode: 201,
    headers: {'x-kind': 'stream'}});
  http.write('hello ');
  await new Promise((r) => setTimeout(r, 5));
  http.write(Buffer.from('world'));
  http.end();
});
"""


def test_invoke_with_response_stream(lam):
    """The response as Lambda's event stream, which boto3 decodes (timing of the chunks:
    tests/integration/test_response_streaming.py)."""
    create(lam, "py", V2)
    resp = lam.invoke_with_response_stream(FunctionName="py", Payload=b'{"a": 1}', LogType="Tail")
    assert resp["ExecutedVersion"] == "$LATEST"
    events = list(resp["EventStream"])
    body = b"".join(e["PayloadChunk"]["Payload"] for e in events if "PayloadChunk" in e)
    assert json.loads(body) == {"v": 2, "event": {"a": 1}}
    done = events[-1]["InvokeComplete"]
    assert "ErrorCode" not in done
    assert "REPORT RequestId" in base64.b64decode(done["LogResult"]).decode()

    create(lam, "js", zipped({"index.js": STREAMING_JS}), Runtime="nodejs20.x",
           Handler="index.handler")
    events = list(lam.invoke_with_response_stream(FunctionName="js")["EventStream"])
    body = b"".join(e["PayloadChunk"]["Payload"] for e in events if "PayloadChunk" in e)
    prelude, _, rest = body.partition(b"\0" * 8)
    assert json.loads(prelude) == {"statusCode": 201, "headers": {"x-kind": "stream"}}
    assert rest == b"hello world"
    # Plain Invoke of a streaming handler gets the same bytes, buffered.
    assert lam.invoke(FunctionName="js")["Payload"].read() == body

    create(lam, "bad", zipped({"app.py": "def handler(e, c):\n    raise KeyError('k')\n"}))
    events = list(lam.invoke_with_response_stream(FunctionName="bad")["EventStream"])
    assert events[-1]["InvokeComplete"]["ErrorCode"] == "KeyError"


def test_tags(lam):
    arn = create(lam, Tags={"team": "a", "env": "dev"})["FunctionArn"]
    assert lam.list_tags(Resource=arn)["Tags"] == {"env": "dev", "team": "a"}
    lam.tag_resource(Resource=arn, Tags={"env": "prod", "cost": "1"})
    lam.untag_resource(Resource=arn, TagKeys=["team", "absent"])
    assert lam.get_function(FunctionName="fn")["Tags"] == {"cost": "1", "env": "prod"}
    with pytest.raises(lam.exceptions.InvalidParameterValueException):
        lam.tag_resource(Resource=arn, Tags={"aws:x": "1"})
    with pytest.raises(lam.exceptions.InvalidParameterValueException):
        create(lam, "other", Tags={"aws:reserved": "x"})
    with pytest.raises(lam.exceptions.ResourceNotFoundException):  # nothing was created
        lam.get_function(FunctionName="other")
    lam.delete_function(FunctionName="fn")
    create(lam)  # a new function of the same name starts without the old one's tags
    assert lam.list_tags(Resource=arn)["Tags"] == {}
