"""The gRPC services for aliases and layers (proto/lambda_resources.proto, issue 20):
translation only, over the Runner's alias and layer methods, errors through status.py's table.
Mounted by server.build_server with one call (`add_to_server`)."""

from __future__ import annotations

import functools
import queue
import threading

from runner.model import ACCOUNT, function_arn, region
from runner.service.grpc.status import abort
from runner.service.proto import lambda_resources_pb2 as lpb
from runner.service.proto import lambda_resources_pb2_grpc as lpb_grpc
from runner.storage.layers import LayerVersion


def _edge(method):
    @functools.wraps(method)
    def wrapper(self, request, context):
        try:
            return method(self, request, context)
        except Exception as exc:  # context.abort raises too; it is not caught twice
            abort(context, exc)

    return wrapper


def alias_message(a) -> lpb.Alias:
    return lpb.Alias(function=a.function, name=a.name, version=a.version,
                     weights=dict(a.weights), description=a.description,
                     revision_id=a.revision_id, arn=function_arn(a.function, a.name))


def layer_message(lv: LayerVersion) -> lpb.LayerVersion:
    return lpb.LayerVersion(
        name=lv.name, version=lv.version,
        arn=f"arn:aws:lambda:{region()}:{ACCOUNT}:layer:{lv.name}:{lv.version}",
        description=lv.description, compatible_runtimes=list(lv.compatible_runtimes),
        license=lv.license, code_sha256=lv.code_sha256, code_size=lv.code_size,
        created_at=lv.created_at)


class AliasesServicer(lpb_grpc.AliasesServicer):
    def __init__(self, runner) -> None:
        self.runner = runner

    @_edge
    def CreateAlias(self, request, context):
        return alias_message(self.runner.create_alias(
            request.function, request.name, request.version, weights=dict(request.weights),
            description=request.description))

    @_edge
    def GetAlias(self, request, context):
        return alias_message(self.runner.get_alias(request.function, request.name))

    @_edge
    def UpdateAlias(self, request, context):
        weights = dict(request.weights) if (request.weights or request.replace_weights) else None
        return alias_message(self.runner.update_alias(
            request.function, request.name,
            version=request.version if request.HasField("version") else None,
            weights=weights,
            description=request.description if request.HasField("description") else None,
            revision_id=request.revision_id or None))

    @_edge
    def ListAliases(self, request, context):
        return lpb.ListAliasesResponse(aliases=[alias_message(a) for a in self.runner.list_aliases(
            request.function, request.version or None)])

    @_edge
    def DeleteAlias(self, request, context):
        self.runner.delete_alias(request.function, request.name)
        return lpb.DeleteAliasResponse()


class LayersServicer(lpb_grpc.LayersServicer):
    def __init__(self, runner) -> None:
        self.runner = runner

    @_edge
    def PublishLayer(self, request, context):
        return layer_message(self.runner.publish_layer(
            request.name, request.content, description=request.description,
            compatible_runtimes=tuple(request.compatible_runtimes), license=request.license))

    @_edge
    def GetLayerVersion(self, request, context):
        return layer_message(self.runner.get_layer(request.name, request.version))

    @_edge
    def ListLayers(self, request, context):
        found = (self.runner.list_layer_versions(request.name) if request.name
                 else self.runner.list_layers())
        return lpb.ListLayersResponse(layers=[layer_message(lv) for lv in found])

    @_edge
    def DeleteLayerVersion(self, request, context):
        self.runner.delete_layer_version(request.name, request.version)
        return lpb.DeleteLayerVersionResponse()


def role_message(r) -> lpb.RoleInfo:
    """Never the secret access key nor the session token (storage/roles.py)."""
    return lpb.RoleInfo(name=r.name, access_key_id=r.access_key_id,
                        has_session_token=bool(r.session_token), endpoint_url=r.endpoint_url,
                        s3_endpoint_url=r.s3_endpoint_url, generation=r.generation,
                        updated_at=r.updated_at)


_ROLE_FIELDS = ("access_key_id", "secret_access_key", "session_token", "endpoint_url",
                "s3_endpoint_url")


class RolesServicer(lpb_grpc.RolesServicer):
    def __init__(self, runner) -> None:
        self.runner = runner

    @_edge
    def CreateRole(self, request, context):
        return role_message(self.runner.create_role(
            request.name, request.access_key_id, request.secret_access_key,
            session_token=request.session_token, endpoint_url=request.endpoint_url,
            s3_endpoint_url=request.s3_endpoint_url))

    @_edge
    def UpdateRole(self, request, context):
        changes = {f: getattr(request, f) for f in _ROLE_FIELDS if request.HasField(f)}
        return role_message(self.runner.update_role(request.name, **changes))

    @_edge
    def GetRole(self, request, context):
        return role_message(self.runner.get_role(request.name))

    @_edge
    def ListRoles(self, request, context):
        return lpb.ListRolesResponse(roles=[role_message(r) for r in self.runner.list_roles()])

    @_edge
    def DeleteRole(self, request, context):
        return role_message(self.runner.delete_role(request.name))


STREAM_CHUNK_BYTES = 64 * 1024


class StreamingServicer(lpb_grpc.StreamingServicer):
    def __init__(self, runner) -> None:
        self.runner = runner

    def InvokeWithResponseStream(self, request, context):
        """Each chunk is yielded as the handler writes it (decision 075). The invocation runs on
        a thread of its own, its chunks reaching this generator through a queue; a client that
        cancels closes the feed (add_callback), so the rest is dropped and the invocation ends
        normally. A platform error before the first chunk aborts the call with its status."""
        feed: queue.SimpleQueue = queue.SimpleQueue()
        closed = threading.Event()
        context.add_callback(closed.set)

        def put(item) -> None:
            if not closed.is_set():
                feed.put(item)

        def run() -> None:
            # The last item goes in even after a cancel: the generator may be waiting for it.
            try:
                feed.put(("result", self.runner.invoke_stream(
                    request.name, request.payload, lambda chunk: put(("chunk", chunk)),
                    qualifier=request.qualifier or None)))
            except Exception as exc:
                feed.put(("raised", exc))

        threading.Thread(target=run, name="grpc-stream-invoke", daemon=True).start()
        while True:
            kind, value = feed.get()
            if kind == "chunk":
                for i in range(0, len(value), STREAM_CHUNK_BYTES):
                    yield lpb.StreamInvokeEvent(payload_chunk=value[i:i + STREAM_CHUNK_BYTES])
                continue
            if kind == "raised":
                abort(context, value)
            result = value
            break
        yield lpb.StreamInvokeEvent(complete=lpb.StreamInvokeComplete(
            error_code=(result.error or {}).get("errorType", "") if result.function_error else "",
            error_details=result.payload.decode("utf-8", "replace") if result.function_error else "",
            log_tail=result.log_tail() if request.log_tail else b"",
            executed_version=result.executed_version, request_id=result.request_id))


def add_to_server(runner, server) -> list[str]:
    """Register the services on `server`; their full names (for health and reflection)."""
    lpb_grpc.add_AliasesServicer_to_server(AliasesServicer(runner), server)
    lpb_grpc.add_LayersServicer_to_server(LayersServicer(runner), server)
    lpb_grpc.add_RolesServicer_to_server(RolesServicer(runner), server)
    lpb_grpc.add_StreamingServicer_to_server(StreamingServicer(runner), server)
    return [lpb.DESCRIPTOR.services_by_name[n].full_name
            for n in ("Aliases", "Layers", "Roles", "Streaming")]
