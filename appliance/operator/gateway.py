"""The platform gateway as pure functions: what is routed → an nginx configuration → Kubernetes objects.

Called by `handlers` (on every DSCInitialization pass, and when a Notebook or InferenceService
appears or goes) and by the unit tests; the integration tests run the generated configuration in the
real gateway image. One host port (`ports.http`, NodePort 30080) carries everything a person opens:

- `/notebook/<ns>/<name>/...` → the Notebook's Service (port 80), path unchanged: JupyterLab's base
  URL is that path. JupyterLab checks its own token.
- `/serving/<ns>/<name>/...` → the InferenceService's predictor (`/v2/...` with the prefix taken
  off). The gateway demands `Authorization: Bearer <token>`, the token from the Secret
  `<name>-inference-token` the operator made (DESIGN.md §7), unless the InferenceService is annotated
  `security.opendatahub.io/enable-auth: "false"`.
- `/ds-pipeline/...` → the pipeline server (`pipelineserver`, `/apis/v1/...` with the prefix taken
  off), when `datasciencepipelines` is Managed and its token Secret exists; Bearer token required
  (the server checks it too). Not `/pipelines/`: `pipelines` is a default bucket, and S3 requests
  for it arrive path-style on the same port.
- `/minio/ui/` → the MinIO console; everything else → the MinIO S3 API (path-style, the layout
  MinIO documents for one host name), so boto3, s3fs and the minio client work against the port.

gRPC has its own port (`ports.grpc`, NodePort 30081), where the request path names only the method,
so the InferenceService is chosen by the `:authority` `<name>.<ns>` (KServe routes gRPC by host
too); same token rule. Upstreams are DNS names resolved per request, so a route whose Service is
gone answers 502 alone and never stops nginx from loading.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from appliance.operator import inference, minio, pipelineserver

NAME = "odh-gateway"
CONFIG_SECRET = "odh-gateway-config"
CONFIG_KEY = "nginx.conf"
CONFIG_DIR = "/etc/odh-gateway"
STATE_DIR = "/var/lib/odh-gateway"
HTTP_PORT = 8080
GRPC_PORT = 8081
HTTP_NODEPORT = 30080  # kindconfig maps the host's ports.http here
GRPC_NODEPORT = 30081
DEFAULT_IMAGE = "localhost/odh-appliance/gateway:latest"
IMAGE_ENV = "ODH_OPERATOR_GATEWAY_IMAGE"
URL_ENV = "ODH_OPERATOR_GATEWAY_URL"  # how a person reaches the gateway (http://127.0.0.1:8080)
GRPC_URL_ENV = "ODH_OPERATOR_GATEWAY_GRPC"  # and its gRPC port (127.0.0.1:8081)
AUTH_ANNOTATION = "security.opendatahub.io/enable-auth"
TOKEN_LABEL = "odh-appliance/inference-token"
CHECKSUM_ANNOTATION = "odh-appliance/config-sha256"
PRESTOP_SECONDS = 3
LABELS = {
    "app.kubernetes.io/name": NAME,
    "app.kubernetes.io/part-of": "odh-appliance",
    "app.kubernetes.io/managed-by": "odh-appliance-operator",
}
SELECTOR = {"app.kubernetes.io/name": NAME, "app.kubernetes.io/part-of": "odh-appliance"}
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


@dataclass(frozen=True)
class NotebookRoute:
    namespace: str
    name: str

    @property
    def path(self) -> str:
        return f"/notebook/{self.namespace}/{self.name}/"


@dataclass(frozen=True)
class ModelRoute:
    namespace: str
    name: str
    token: str | None  # None: auth turned off by annotation

    @property
    def path(self) -> str:
        return f"/serving/{self.namespace}/{self.name}/"

    @property
    def authority(self) -> str:
        return f"{self.name}.{self.namespace}"


@dataclass(frozen=True)
class Routes:
    minio_namespace: str
    notebooks: tuple[NotebookRoute, ...] = ()
    models: tuple[ModelRoute, ...] = ()
    pipelines_token: str | None = None  # the pipeline server's token; None: no /ds-pipeline/ route


PIPELINES_PATH = "/ds-pipeline/"  # not /pipelines/: that is a default bucket, reached path-style through "/"


# (kind, namespace, name, port) → "host:port" of an upstream; kind is "notebook", "model", "minio" or "pipelines".
Address = Callable[[str, str, str, int], str]


def cluster_address(kind: str, namespace: str, name: str, port: int) -> str:
    """The in-cluster DNS name of the Service behind a route (resolved by nginx per request)."""
    service = inference.predictor_name(name) if kind == "model" else name
    return f"{service}.{namespace}.svc.cluster.local:{port}"


def token_secret_name(isvc_name: str) -> str:
    """Not `<name>-token`: a workbench's token Secret has that name, and the two may share a name."""
    return f"{isvc_name}-inference-token"


def auth_enabled(isvc: Mapping[str, Any]) -> bool:
    """Model endpoints need a token unless the InferenceService says `enable-auth: "false"`."""
    value = ((isvc.get("metadata") or {}).get("annotations") or {}).get(AUTH_ANNOTATION, "true")
    return str(value).strip().lower() != "false"


def routes(
    minio_namespace: str,
    notebooks: Iterable[Mapping[str, Any]],
    isvcs: Iterable[Mapping[str, Any]],
    tokens: Mapping[tuple[str, str], str],
    pipelines_token: str | None = None,
) -> Routes:
    """The routes for the Notebooks and InferenceServices that exist (`tokens`: (ns, name) → token).

    An InferenceService that needs a token but has none yet is left out (never served without one);
    names that are not DNS labels cannot reach nginx's configuration."""

    def key(obj: Mapping[str, Any]) -> tuple[str, str] | None:
        meta = obj.get("metadata") or {}
        ns, name = meta.get("namespace"), meta.get("name")
        if not (isinstance(ns, str) and isinstance(name, str) and _NAME.match(ns) and _NAME.match(name)):
            return None
        if meta.get("deletionTimestamp"):
            return None
        return ns, name

    nb = sorted({k for k in map(key, notebooks) if k is not None})
    models = []
    for isvc in isvcs:
        k = key(isvc)
        if k is None:
            continue
        if auth_enabled(isvc):
            if k not in tokens:
                continue
            models.append(ModelRoute(k[0], k[1], tokens[k]))
        else:
            models.append(ModelRoute(k[0], k[1], None))
    return Routes(
        minio_namespace,
        tuple(NotebookRoute(ns, name) for ns, name in nb),
        tuple(sorted(models, key=lambda m: (m.namespace, m.name))),
        pipelines_token or None,
    )


_HTTP_HEAD = """\
worker_processes 1;
error_log stderr warn;
events {{
    worker_connections 1024;
}}
http {{
    include {state}/resolver.conf;
    access_log off;
    server_tokens off;
    client_body_temp_path {state}/tmp/body;
    proxy_temp_path {state}/tmp/proxy;
    fastcgi_temp_path {state}/tmp/fastcgi;
    uwsgi_temp_path {state}/tmp/uwsgi;
    scgi_temp_path {state}/tmp/scgi;
    client_max_body_size 0;
    proxy_request_buffering off;
    proxy_buffering off;
    proxy_http_version 1.1;
    proxy_read_timeout 3600s;
    proxy_send_timeout 3600s;
    ignore_invalid_headers off;
    map $http_upgrade $connection_upgrade {{
        default upgrade;
        '' '';
    }}
"""


def _quote(value: str) -> str:
    """An nginx string literal (tokens and names are generated or DNS labels; quotes are escaped anyway)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _auth(token: str | None, *, grpc: bool) -> list[str]:
    if token is None:
        return []
    if grpc:  # the location sets `default_type application/grpc` (not allowed inside `if`)
        deny = ["add_header grpc-status 16 always;", 'add_header grpc-message "a bearer token is required" always;',
                "return 200;"]  # fmt: skip
    else:
        deny = ["add_header WWW-Authenticate Bearer always;", "return 401 'a bearer token is required\\n';"]
    return [f"if ($http_authorization != {_quote('Bearer ' + token)}) {{", *("    " + d for d in deny), "}"]


def _proxy_headers(host: str) -> list[str]:
    return [
        f"proxy_set_header Host {host};",
        "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
        "proxy_set_header X-Forwarded-Proto $scheme;",
        "proxy_set_header X-Forwarded-Host $http_host;",
        "proxy_set_header Upgrade $http_upgrade;",
        "proxy_set_header Connection $connection_upgrade;",
    ]


def _location(match: str, body: Sequence[str]) -> list[str]:
    return [f"location {match} {{", *("    " + line for line in body), "}"]


def nginx_conf(
    r: Routes,
    *,
    state_dir: str = STATE_DIR,
    http_port: int = HTTP_PORT,
    grpc_port: int = GRPC_PORT,
    address: Address = cluster_address,
) -> str:
    """The whole nginx.conf for `r`. Deterministic: the same routes give the same bytes (and checksum).

    The ports and `address` are parameters so that the integration tests can run the same
    configuration in the real gateway image against servers on the host."""
    minio_api = address("minio", r.minio_namespace, minio.NAME, minio.API_PORT)
    minio_console = address("minio", r.minio_namespace, minio.NAME, minio.CONSOLE_PORT)
    http: list[str] = [
        f"listen {http_port} default_server;",
        "location = /healthz {",
        "    default_type text/plain;",
        "    return 200 'ok\\n';",
        "}",
        "location @not_running {",
        "    default_type text/plain;",
        "    return 503 'the workbench is not running (stopped, or still starting); start it and retry\\n';",
        "}",
    ]
    for nb in r.notebooks:
        upstream = address("notebook", nb.namespace, nb.name, 80)
        http += _location(
            f"^~ {nb.path}",
            [f"set $upstream {_quote(upstream)};", *_proxy_headers("$http_host"),
             "error_page 502 504 = @not_running;", "proxy_pass http://$upstream;"],
        )  # fmt: skip
    for m in r.models:
        prefix = m.path.rstrip("/")
        upstream = address("model", m.namespace, m.name, inference.HTTP_PORT)
        http += _location(
            f"^~ {m.path}",
            [*_auth(m.token, grpc=False), f"set $upstream {_quote(upstream)};",
             f"rewrite ^{re.escape(prefix)}(/.*)$ $1 break;", *_proxy_headers("$host"),
             "proxy_pass http://$upstream;"],
        )  # fmt: skip
    if r.pipelines_token:
        upstream = address("pipelines", r.minio_namespace, pipelineserver.NAME, pipelineserver.PORT)
        http += _location(
            f"^~ {PIPELINES_PATH}",
            [*_auth(r.pipelines_token, grpc=False), f"set $upstream {_quote(upstream)};",
             f"rewrite ^{PIPELINES_PATH.rstrip('/')}(/.*)$ $1 break;", *_proxy_headers("$host"),
             "proxy_pass http://$upstream;"],
        )  # fmt: skip
    http += _location(
        "^~ /minio/ui/",
        [f"set $upstream {_quote(minio_console)};", "rewrite ^/minio/ui/(.*)$ /$1 break;",
         *_proxy_headers("$http_host"), "proxy_pass http://$upstream;"],
    )  # fmt: skip
    http += _location(
        "/",
        [f"set $upstream {_quote(minio_api)};", *_proxy_headers("$http_host"), "proxy_pass http://$upstream;"],
    )
    default_body = ["default_type application/grpc;", "add_header grpc-status 5 always;",
                    'add_header grpc-message "no InferenceService for this :authority; use <name>.<namespace>" always;',
                    "return 200;"]  # fmt: skip
    servers = [_server(http), _server([f"listen {grpc_port} http2 default_server;", *_location("/", default_body)])]
    for m in r.models:
        upstream = address("model", m.namespace, m.name, inference.GRPC_PORT)
        body = ["default_type application/grpc;", *_auth(m.token, grpc=True), f"set $upstream {_quote(upstream)};",
                "grpc_pass grpc://$upstream;"]  # fmt: skip
        servers.append(_server([f"listen {grpc_port} http2;", f"server_name {m.authority};", *_location("/", body)]))
    return _HTTP_HEAD.format(state=state_dir) + "".join(servers) + "}\n"


def _server(lines: Sequence[str]) -> str:
    return "    server {\n" + "".join(f"        {line}\n" for line in lines) + "    }\n"


def checksum(conf: str) -> str:
    return hashlib.sha256(conf.encode()).hexdigest()


def objects(namespace: str, conf: str, image: str = DEFAULT_IMAGE) -> list[dict[str, Any]]:
    """The config Secret, the Deployment (rolled when the config changes) and the NodePort Service."""
    meta = {"namespace": namespace, "labels": dict(LABELS)}
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": CONFIG_SECRET, **meta},
        "type": "Opaque",
        "stringData": {CONFIG_KEY: conf},
    }

    def probe(period: int, failures: int) -> dict[str, Any]:
        return {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": period,
                "failureThreshold": failures, "timeoutSeconds": 3}  # fmt: skip

    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": NAME, **meta},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": dict(SELECTOR)},
            # A new configuration starts a new pod; the old one serves until the new one is ready.
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "template": {
                "metadata": {"labels": dict(LABELS), "annotations": {CHECKSUM_ANNOTATION: checksum(conf)}},
                "spec": {
                    "securityContext": {"runAsUser": 1001, "runAsGroup": 0, "runAsNonRoot": True},
                    "terminationGracePeriodSeconds": 20,
                    "containers": [
                        {
                            "name": "nginx",
                            "image": image,
                            "imagePullPolicy": "IfNotPresent",  # loaded into the node; nothing is pulled
                            "ports": [
                                {"name": "http", "containerPort": HTTP_PORT},
                                {"name": "grpc", "containerPort": GRPC_PORT},
                            ],
                            "readinessProbe": probe(2, 2),
                            # An old pod keeps answering until the Service has dropped it everywhere
                            # (kube-proxy's rules lag the endpoint change); then nginx stops gracefully
                            # (the image's STOPSIGNAL is SIGQUIT).
                            "lifecycle": {"preStop": {"exec": {"command": ["sleep", str(PRESTOP_SECONDS)]}}},
                            "livenessProbe": probe(10, 6),
                            "resources": {"requests": {"cpu": "20m", "memory": "16Mi"}, "limits": {"memory": "256Mi"}},
                            "volumeMounts": [
                                {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
                                {"name": "state", "mountPath": STATE_DIR},
                            ],
                            "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
                        }
                    ],
                    "volumes": [
                        {"name": "config", "secret": {"secretName": CONFIG_SECRET}},
                        {"name": "state", "emptyDir": {}},
                    ],
                },
            },
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": NAME, **meta},
        "spec": {
            "type": "NodePort",
            "selector": dict(SELECTOR),
            "ports": [
                {"name": "http", "port": HTTP_PORT, "targetPort": "http", "nodePort": HTTP_NODEPORT},
                {"name": "grpc", "port": GRPC_PORT, "targetPort": "grpc", "nodePort": GRPC_NODEPORT},
            ],
        },
    }
    return [secret, service, deployment]


def token_secret(isvc: Mapping[str, Any], token: str) -> dict[str, Any]:
    """The Secret holding an InferenceService's bearer token, owned by it (deleted with it)."""
    meta = isvc["metadata"]
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": token_secret_name(meta["name"]),
            "namespace": meta["namespace"],
            "labels": {TOKEN_LABEL: "true", inference.ISVC_LABEL: meta["name"], **inference.MANAGED_BY},
            "ownerReferences": inference.owner_references(isvc),
        },
        "type": "Opaque",
        "stringData": {"token": token},
    }


def external_url(base: str, namespace: str, name: str) -> str:
    """The InferenceService's URL through the gateway, as `status.url` reports it."""
    return f"{base.rstrip('/')}/serving/{namespace}/{name}"
