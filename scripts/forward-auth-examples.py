"""Contract check of k8s/forward-auth/: the examples agree with jwtgate's
config and with each other, and Envoy's bootstrap is a valid v3 Bootstrap.
Usage: forward-auth-examples.py DIR (needs pyyaml and xds-protos)."""
import os
import sys
import yaml
from google.protobuf import json_format
# Imported for their descriptors: the Any fields of the bootstrap resolve to them.
from envoy.config.bootstrap.v3 import bootstrap_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2  # noqa: F401
from envoy.extensions.filters.http.ext_authz.v3 import ext_authz_pb2  # noqa: F401
from envoy.extensions.filters.http.router.v3 import router_pb2  # noqa: F401
from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2  # noqa: F401

failures = []


def check(ok, what):
    if not ok:
        failures.append(what)


def docs(path):
    return [d for d in yaml.safe_load_all(open(path)) if d]


def kind(path, name):
    found = [d for d in docs(path) if d["kind"] == name]
    check(len(found) == 1, f"{os.path.basename(path)}: one {name}")
    return found[0] if found else {}


root = sys.argv[1]
at = lambda name: os.path.join(root, name)  # noqa: E731

config = yaml.safe_load(open(at("jwtgate.yaml")))
http_port = int(config["forward_auth"]["listen"].rsplit(":", 1)[1])
grpc_port = int(config["forward_auth"]["grpc_listen"].rsplit(":", 1)[1])
claims = sorted({h.lower() for r in config["routes"] for h in (r.get("forward_claims") or {}).values()})
check(claims, "jwtgate.yaml: some route forwards claim headers")
check(config.get("trusted_proxies"), "jwtgate.yaml: trusted_proxies set")
check(config["forward_auth"].get("proxy") == "nginx", "jwtgate.yaml: proxy: nginx, for the ingress-nginx example")

service = kind(at("authz.yaml"), "Service")
deployment = kind(at("authz.yaml"), "Deployment")
fqdn = f"{service['metadata']['name']}.{service['metadata']['namespace']}.svc.cluster.local"
ports = {p["port"]: p for p in service["spec"]["ports"]}
container = deployment["spec"]["template"]["spec"]["containers"][0]
named = {p["name"]: p["containerPort"] for p in container["ports"]}
for port, want in ((http_port, http_port), (grpc_port, grpc_port)):
    target = ports.get(port, {}).get("targetPort")
    check(named.get(target) == want, f"authz.yaml: Service port {port} reaches containerPort {want}")
check(ports.get(grpc_port, {}).get("appProtocol") == "grpc", "authz.yaml: the gRPC port says appProtocol: grpc")
check(service["spec"]["selector"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items(),
      "authz.yaml: the Service selects the Deployment's pods")

ingress = kind(at("ingress-nginx.yaml"), "Ingress")
notes = ingress["metadata"]["annotations"]
check(notes.get("nginx.ingress.kubernetes.io/auth-url") == f"http://{fqdn}:{http_port}/auth",
      "ingress-nginx.yaml: auth-url is jwtgate's HTTP forward-auth port")
listed = sorted(h.strip().lower() for h in notes.get("nginx.ingress.kubernetes.io/auth-response-headers", "").split(","))
check(listed == claims, f"ingress-nginx.yaml: auth-response-headers {listed} == the claim headers {claims}")

middleware = kind(at("traefik-middleware.yaml"), "Middleware")["spec"]["forwardAuth"]
check(middleware["address"] == f"http://{fqdn}:{http_port}/", "traefik-middleware.yaml: address")
check(sorted(h.lower() for h in middleware["authResponseHeaders"]) == claims, "traefik: authResponseHeaders")
check(middleware.get("trustForwardHeader") is False, "traefik: trustForwardHeader false (a client's X-Forwarded-* never reach jwtgate)")
route = kind(at("traefik-middleware.yaml"), "IngressRoute")
check(all({"name": "jwtgate"} in r.get("middlewares", []) for r in route["spec"]["routes"]), "traefik: every route uses the middleware")

bootstrap = yaml.safe_load(open(at("envoy.yaml")))
try:
    parsed = json_format.ParseDict(bootstrap, bootstrap_pb2.Bootstrap())
except json_format.ParseError as err:
    failures.append(f"envoy.yaml is not a valid v3 Bootstrap: {err}")
    parsed = None
if parsed is not None:
    clusters = {c["name"]: c for c in bootstrap["static_resources"]["clusters"]}
    manager = bootstrap["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    authz = [f["typed_config"] for f in manager["http_filters"] if f["name"] == "envoy.filters.http.ext_authz"]
    check(len(authz) == 1 and manager["http_filters"][-1]["name"] == "envoy.filters.http.router",
          "envoy.yaml: one ext_authz filter, before the router")
    if authz:
        check(authz[0].get("failure_mode_allow") is False, "envoy.yaml: failure_mode_allow false")
        name = authz[0]["grpc_service"]["envoy_grpc"]["cluster_name"]
        cluster = clusters.get(name, {})
        address = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"]
        check((address["address"], address["port_value"]) == (fqdn, grpc_port), "envoy.yaml: the authz cluster is jwtgate's gRPC port")
        options = cluster.get("typed_extension_protocol_options", {})
        check(any("http2_protocol_options" in o.get("explicit_http_config", {}) for o in options.values()),
              "envoy.yaml: the authz cluster speaks HTTP/2 (gRPC)")

istio = docs(at("istio.yaml"))
mesh = yaml.safe_load([d for d in istio if d["kind"] == "ConfigMap"][0]["data"]["mesh"])
providers = {p["name"]: p for p in mesh["extensionProviders"]}
policy = [d for d in istio if d["kind"] == "AuthorizationPolicy"][0]
check(policy["apiVersion"] == "security.istio.io/v1" and policy["spec"]["action"] == "CUSTOM", "istio.yaml: a CUSTOM AuthorizationPolicy")
provider = providers.get(policy["spec"]["provider"]["name"], {}).get("envoyExtAuthzGrpc", {})
check((provider.get("service"), provider.get("port")) == (fqdn, grpc_port), "istio.yaml: the provider is jwtgate's gRPC port")

if failures:
    for f in failures:
        print(f"forward-auth-examples: FAIL: {f}", file=sys.stderr)
    sys.exit(1)
print("forward-auth-examples: contract and Envoy bootstrap: ok")
