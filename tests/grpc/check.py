#!/usr/bin/env python3
"""An Envoy ext_authz gRPC client that shares no code with jwtgate: calls
envoy.service.auth.v3.Authorization/Check over HTTP/2 (grpcio, the protos
from the PyPI package xds-protos), as Envoy's ext_authz filter does.

Usage: check.py HOST:PORT < checks.json

stdin: a JSON list of checks, each
  {"method": "GET", "path": "/api/x?y=1", "host": "app.example",
   "headers": {"authorization": "Bearer ..."}}
or {"no_http": true} for a CheckRequest without attributes.request.http.
stdout: a JSON list of results, one per check, in order:
  {"code": <google.rpc.Status code>, "message": "...",
   "ok": {"headers": {name: value}, "append_actions": {name: action name},
          "headers_to_remove": [...],
          "response_headers_to_add": {name: value}} or null,
   "denied": {"status": <http status>, "headers": {name: value},
              "body": "..."} or null}
A gRPC failure (no answer) is {"rpc_error": "<grpc.StatusCode name>"}.
Exits non-zero, loudly, when grpcio or xds-protos are missing.
"""
import json
import sys

try:
    import grpc
    from envoy.config.core.v3 import base_pb2
    from envoy.service.auth.v3 import attribute_context_pb2, external_auth_pb2, external_auth_pb2_grpc
except ImportError as missing:
    sys.stderr.write(
        f"check.py: {missing}: needs grpcio and xds-protos "
        "(python3 -m pip install grpcio xds-protos; scripts/test.sh installs them)\n"
    )
    sys.exit(2)


def check_request(spec):
    if spec.get("no_http"):
        return external_auth_pb2.CheckRequest()
    http = attribute_context_pb2.AttributeContext.HttpRequest(
        id="1",
        method=spec["method"],
        path=spec["path"],
        host=spec.get("host", ""),
        scheme="http",
        protocol="HTTP/1.1",
    )
    # As Envoy fills the map: the pseudo-headers too.
    http.headers[":method"] = spec["method"]
    http.headers[":path"] = spec["path"]
    if spec.get("host"):
        http.headers[":authority"] = spec["host"]
    for name, value in spec.get("headers", {}).items():
        http.headers[name] = value
    attributes = attribute_context_pb2.AttributeContext(
        request=attribute_context_pb2.AttributeContext.Request(http=http)
    )
    return external_auth_pb2.CheckRequest(attributes=attributes)


def header_map(options):
    return {o.header.key: o.header.value or o.header.raw_value.decode("latin-1") for o in options}


def result(response):
    kind = response.WhichOneof("http_response")
    out = {"code": response.status.code, "message": response.status.message, "ok": None, "denied": None}
    if kind == "ok_response":
        ok = response.ok_response
        actions = base_pb2.HeaderValueOption.HeaderAppendAction
        out["ok"] = {
            "headers": header_map(ok.headers),
            "append_actions": {o.header.key: actions.Name(o.append_action) for o in ok.headers},
            "appends": {o.header.key: o.append.value for o in ok.headers if o.HasField("append")},
            "headers_to_remove": list(ok.headers_to_remove),
            "response_headers_to_add": header_map(ok.response_headers_to_add),
        }
    elif kind == "denied_response":
        denied = response.denied_response
        out["denied"] = {
            "status": denied.status.code,
            "headers": header_map(denied.headers),
            "body": denied.body,
        }
    return out


def main():
    if len(sys.argv) != 2:
        sys.stderr.write(__doc__)
        sys.exit(2)
    checks = json.load(sys.stdin)
    results = []
    with grpc.insecure_channel(sys.argv[1]) as channel:
        stub = external_auth_pb2_grpc.AuthorizationStub(channel)
        for spec in checks:
            try:
                results.append(result(stub.Check(check_request(spec), timeout=10)))
            except grpc.RpcError as err:
                results.append({"rpc_error": err.code().name, "details": err.details()})
    json.dump(results, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
