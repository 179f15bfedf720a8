"""The gateway's pure parts: which routes exist, the nginx configuration, its Kubernetes objects.

The configuration itself is exercised in the real gateway image by tests/integration/test_gateway.py;
these pin the decisions: who is routed, who needs a token, what rolls the Deployment.
"""

from __future__ import annotations

from typing import Any

from appliance.operator import gateway, initialization, install


def obj(ns: str, name: str, **annotations: str) -> dict[str, Any]:
    return {"metadata": {"namespace": ns, "name": name, "uid": "u-1", "annotations": annotations}}


def test_models_need_a_token_unless_annotated_off() -> None:
    assert gateway.auth_enabled(obj("p", "m"))
    assert gateway.auth_enabled(obj("p", "m", **{gateway.AUTH_ANNOTATION: "true"}))
    assert not gateway.auth_enabled(obj("p", "m", **{gateway.AUTH_ANNOTATION: "False"}))


def test_a_model_without_its_token_yet_is_not_routed() -> None:
    r = gateway.routes("odh", [], [obj("p", "a"), obj("p", "b")], {("p", "b"): "t"})
    assert [(m.name, m.token) for m in r.models] == [("b", "t")]
    open_model = gateway.routes("odh", [], [obj("p", "c", **{gateway.AUTH_ANNOTATION: "false"})], {})
    assert [(m.name, m.token) for m in open_model.models] == [("c", None)]


def test_deleted_and_badly_named_objects_are_not_routed() -> None:
    gone = obj("p", "x")
    gone["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    r = gateway.routes("odh", [gone, obj("p", "Bad_Name"), obj("p", 'a"b'), obj("p", "ok")], [], {})
    assert [n.name for n in r.notebooks] == ["ok"]


def test_config_routes_paths_and_authorities() -> None:
    r = gateway.routes("odh", [obj("p", "wb")], [obj("p", "m")], {("p", "m"): "secret-token"})
    conf = gateway.nginx_conf(r)
    assert "location ^~ /notebook/p/wb/ {" in conf
    assert '"wb.p.svc.cluster.local:80"' in conf
    assert "location ^~ /serving/p/m/ {" in conf and "rewrite ^/serving/p/m(/.*)$ $1 break;" in conf
    assert '"m-predictor.p.svc.cluster.local:8080"' in conf and '"m-predictor.p.svc.cluster.local:8081"' in conf
    assert "server_name m.p;" in conf
    assert conf.count('if ($http_authorization != "Bearer secret-token")') == 2  # REST and gRPC
    assert '"minio.odh.svc.cluster.local:9000"' in conf and '"minio.odh.svc.cluster.local:9001"' in conf
    assert "listen 8080 default_server;" in conf and "listen 8081 http2 default_server;" in conf


def test_config_is_deterministic_and_its_checksum_rolls_the_deployment() -> None:
    one = gateway.routes("odh", [obj("p", "a"), obj("p", "b")], [], {})
    two = gateway.routes("odh", [obj("p", "b"), obj("p", "a")], [], {})
    assert gateway.nginx_conf(one) == gateway.nginx_conf(two)
    secret, service, deployment = gateway.objects("odh", gateway.nginx_conf(one))
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations[gateway.CHECKSUM_ANNOTATION] == gateway.checksum(secret["stringData"]["nginx.conf"])
    three = gateway.objects("odh", gateway.nginx_conf(gateway.routes("odh", [obj("p", "a")], [], {})))[2]
    assert three["spec"]["template"]["metadata"]["annotations"] != annotations
    assert deployment["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}
    assert {p["nodePort"] for p in service["spec"]["ports"]} == {gateway.HTTP_NODEPORT, gateway.GRPC_NODEPORT}
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True


def test_token_secret_is_owned_by_its_inference_service_and_not_named_like_a_workbench_token() -> None:
    secret = gateway.token_secret({"apiVersion": "serving.kserve.io/v1beta1", **obj("p", "m")}, "tok")
    from appliance.operator import notebook  # noqa: PLC0415

    assert secret["metadata"]["name"] == "m-inference-token" != notebook.token_secret_name("m")
    assert secret["metadata"]["ownerReferences"][0]["kind"] == "InferenceService"
    assert secret["metadata"]["labels"][gateway.TOKEN_LABEL] == "true"
    assert secret["stringData"] == {"token": "tok"}


def test_quotes_in_a_token_cannot_break_out_of_the_string() -> None:
    r = gateway.routes("odh", [], [obj("p", "m")], {("p", "m"): 'a"; return 200; #'})
    assert 'Bearer a\\"; return 200; #"' in gateway.nginx_conf(r)


def test_dsci_ready_needs_the_gateway_too() -> None:
    status = initialization.status("odh", True, "MinIO answers", gateway=(False, "the gateway is starting"))
    by_type = {c["type"]: c for c in status["conditions"]}
    assert by_type["Ready"]["status"] == "False" and by_type["Ready"]["message"] == "the gateway is starting"
    assert by_type["GatewayReady"]["reason"] == "GatewayNotReady"
    ready = initialization.status("odh", True, "MinIO answers", gateway=(True, "ok"))
    assert ready["phase"] == "Ready"


def test_operator_gets_the_gateway_image_and_url() -> None:
    manifests = install.operator_manifests("op:1", "minio:1", "ms:1", gateway_image="gw:1", gateway_url="http://x:1")
    env = {e["name"]: e["value"] for e in manifests[-1]["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env[gateway.IMAGE_ENV] == "gw:1" and env[gateway.URL_ENV] == "http://x:1"
    no_url = install.operator_manifests("op:1", "minio:1")
    names = {e["name"] for e in no_url[-1]["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert gateway.URL_ENV not in names


def test_pipelines_are_routed_with_their_token_only_once_it_exists() -> None:
    without = gateway.nginx_conf(gateway.routes("odh", [], [], {}))
    assert "/ds-pipeline/" not in without
    conf = gateway.nginx_conf(gateway.routes("odh", [], [], {}, "pipe-token"))
    assert "location ^~ /ds-pipeline/ {" in conf
    assert "rewrite ^/ds-pipeline(/.*)$ $1 break;" in conf
    assert "/pipelines/" not in conf  # the default bucket `pipelines` stays with MinIO (path-style S3)
    assert '"ds-pipeline.odh.svc.cluster.local:8888"' in conf
    assert conf.count('if ($http_authorization != "Bearer pipe-token")') == 1
    # Before the catch-all MinIO route, so that S3 never sees /pipelines/ requests.
    assert conf.index("location ^~ /ds-pipeline/") < conf.index("location / {")
