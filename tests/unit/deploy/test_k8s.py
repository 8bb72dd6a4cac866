"""deploy/k8s: the base and both overlays render with kustomize, every manifest validates
against the Kubernetes schemas (kubernetes-validate) or its operator's CRD (Strimzi, KEDA,
Prometheus Operator; made by `make k8s-schemas` into .linkcast/k8s), and the manifests
agree with linkcast's own code: topics, settings, ports, probes, rules.
"""

import re
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from deploy.cli import build_parser
from streams.app import create_app
from streams.flowsreader import flows_group
from streams.settings import StreamSettings
from streams.topics import Topics, topic_specs
from tests.conftest import skip_or_fail_in_ci
from tests.unit.deploy.k8s_schemas import CrdSchemas
from tests.unit.deploy.linkcast_env import REPO, known_variables

K8S = REPO / "deploy" / "k8s"
TOOLS = REPO / ".linkcast" / "k8s"
OVERLAYS = ["dev", "prod"]
KUBERNETES_VERSIONS = ["1.30.0", "1.37.0"]  # oldest and newest we validate against
CRD_GROUPS = {"kafka.strimzi.io", "keda.sh", "monitoring.coreos.com"}
CRD_PLURALS = {
    "kafkas",
    "kafkanodepools",
    "kafkatopics",
    "scaledobjects",
    "servicemonitors",
    "prometheusrules",
}
Manifest = dict[str, Any]


@pytest.fixture(scope="module")
def kustomize() -> Path:
    binary = TOOLS / "bin" / "kustomize"
    if not (TOOLS / "stamp").is_file() or not binary.is_file():
        skip_or_fail_in_ci(f"no kustomize and CRDs in {TOOLS}: run 'make k8s-schemas'")
    return binary


@pytest.fixture(scope="module")
def crds(kustomize: Path) -> CrdSchemas:
    return CrdSchemas.load(TOOLS / "crds", CRD_PLURALS)


def render(kustomize: Path, folder: Path) -> list[Manifest]:
    done = subprocess.run(
        [str(kustomize), "build", str(folder)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


@pytest.fixture(scope="module")
def rendered(kustomize: Path) -> dict[str, list[Manifest]]:
    return {name: render(kustomize, K8S / "overlays" / name) for name in OVERLAYS} | {
        "base": render(kustomize, K8S / "base")
    }


def one(manifests: list[Manifest], kind: str, name: str) -> Manifest:
    found = [m for m in manifests if m["kind"] == kind and m["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


def of_kind(manifests: list[Manifest], kind: str) -> list[Manifest]:
    return [m for m in manifests if m["kind"] == kind]


def group(manifest: Manifest) -> str:
    return str(manifest["apiVersion"]).rpartition("/")[0]


def validate(manifest: Manifest, crds: CrdSchemas) -> list[str]:
    """What each schema says about ``manifest`` (empty when it is valid everywhere)."""
    if group(manifest) in CRD_GROUPS:
        return crds.errors(manifest)
    problems = []
    for version in KUBERNETES_VERSIONS:
        try:
            kubernetes_validate.validate(manifest, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = ".".join(str(p) for p in exc.path)
            problems.append(f"Kubernetes {version}: {path}: {exc.message}")
    return problems


@pytest.mark.parametrize("name", ["base", *OVERLAYS])
def test_every_manifest_validates_against_its_schema(rendered, crds, name):
    manifests = rendered[name]
    kinds = {m["kind"] for m in manifests}
    assert {"Kafka", "KafkaNodePool", "KafkaTopic", "ScaledObject", "ServiceMonitor"} <= kinds
    assert {"PrometheusRule", "StatefulSet", "Deployment", "NetworkPolicy"} <= kinds
    for manifest in manifests:
        problems = validate(manifest, crds)
        label = f"{manifest['kind']}/{manifest['metadata']['name']}"
        assert not problems, f"{name}: {label}: " + "; ".join(problems)


@pytest.mark.parametrize(
    ("kind", "name", "path", "value"),
    [
        ("StatefulSet", "linkcast-worker", ["spec", "replica"], 2),  # a typo of replicas
        ("Deployment", "linkcast-api", ["spec", "template", "spec", "enableServiceLinks"], "no"),
        ("KafkaTopic", "linkcast-flows", ["spec", "partitions"], "twelve"),
        ("KafkaNodePool", "brokers", ["spec", "roles"], ["router"]),
        ("Kafka", "linkcast", ["spec", "kafka", "listners"], []),
        ("ScaledObject", "linkcast-worker", ["spec", "minReplicaCount"], "2"),
        ("ServiceMonitor", "linkcast-api", ["spec", "endpoints", 0, "scheme"], "gopher"),
        ("PrometheusRule", "linkcast", ["spec", "groups", 0, "rules", 0, "expr"], None),
    ],
)
def test_the_validators_reject_a_broken_manifest(rendered, crds, kind, name, path, value):
    manifest = yaml.safe_load(yaml.safe_dump(one(rendered["prod"], kind, name)))
    assert not validate(manifest, crds)
    target = manifest
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    assert validate(manifest, crds), f"a broken {kind} passed"


def test_no_secret_is_shipped(rendered):
    for name, manifests in rendered.items():
        assert not of_kind(manifests, "Secret"), f"{name} carries a Secret"


def test_every_name_is_a_valid_kubernetes_name(rendered):
    dns_subdomain = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
    for manifests in rendered.values():
        for m in manifests:
            assert dns_subdomain.match(m["metadata"]["name"]), m["metadata"]["name"]
            assert len(m["metadata"]["name"]) <= 253


def settings_of(manifests: list[Manifest], extra: dict[str, str] | None = None) -> StreamSettings:
    """The worker's settings as the overlay's ConfigMap and the worker's env give them."""
    config = one(manifests, "ConfigMap", "linkcast-config")["data"]
    env = {e["name"]: e["value"] for e in worker_container(manifests)["env"]}
    fields = {k.removeprefix("LINKCAST_").lower(): v for k, v in {**config, **env}.items()}
    return StreamSettings(**fields, **(extra or {}))


def worker_container(manifests: list[Manifest]) -> Manifest:
    spec = one(manifests, "StatefulSet", "linkcast-worker")["spec"]["template"]["spec"]
    return spec["containers"][0]


def api_container(manifests: list[Manifest]) -> Manifest:
    spec = one(manifests, "Deployment", "linkcast-api")["spec"]["template"]["spec"]
    return spec["containers"][0]


def expected_topics(settings: StreamSettings, tmp_path: Path) -> dict[str, tuple[int, int, dict]]:
    """topicName -> (partitions, replicas, config) that linkcast and its Faust app use."""
    topics = {s.name: (s.partitions, s.replication, dict(s.config)) for s in topic_specs(settings)}
    app_settings = settings.model_copy(
        update={"data_dir": tmp_path, "classify": False, "forecast": False}
    )
    app = create_app(app_settings)
    isr = topics[Topics.from_settings(settings).windows][2]["min.insync.replicas"]
    for table in app.tables.values():
        topics[table.changelog_topic.get_topic_name()] = (
            table.partitions,
            settings.replication,
            {"cleanup.policy": "compact", "min.insync.replicas": isr},
        )
    leader = app._leader_assignor
    topics[leader._leader_topic_name] = (1, settings.replication, {"min.insync.replicas": isr})
    return topics


@pytest.mark.parametrize("name", OVERLAYS)
def test_a_kafka_topic_for_every_topic_linkcast_and_faust_use(rendered, name, tmp_path):
    manifests = rendered[name]
    settings = settings_of(manifests)
    declared = {
        t["spec"]["topicName"]: (
            t["spec"]["partitions"],
            t["spec"]["replicas"],
            {k: str(v) for k, v in t["spec"].get("config", {}).items()},
        )
        for t in of_kind(manifests, "KafkaTopic")
    }
    assert declared == expected_topics(settings, tmp_path)
    for topic in of_kind(manifests, "KafkaTopic"):
        assert topic["metadata"]["labels"]["strimzi.io/cluster"] == "linkcast"


@pytest.mark.parametrize("name", OVERLAYS)
def test_kafka_has_the_brokers_the_replication_needs(rendered, name):
    manifests = rendered[name]
    settings = settings_of(manifests)
    kafka = one(manifests, "Kafka", "linkcast")
    pools = {p["metadata"]["name"]: p["spec"] for p in of_kind(manifests, "KafkaNodePool")}
    brokers = sum(p["replicas"] for p in pools.values() if "broker" in p["roles"])
    controllers = sum(p["replicas"] for p in pools.values() if "controller" in p["roles"])
    assert brokers >= settings.replication
    assert controllers % 2 == 1, "a KRaft quorum wants an odd number of controllers"
    config = kafka["spec"]["kafka"]["config"]
    for key in ["default.replication.factor", "offsets.topic.replication.factor"]:
        assert int(config[key]) == settings.replication, key
    assert int(config["min.insync.replicas"]) < max(2, settings.replication)
    listener = next(x for x in kafka["spec"]["kafka"]["listeners"] if x["name"] == "plain")
    bootstrap = f"{kafka['metadata']['name']}-kafka-bootstrap:{listener['port']}"
    assert settings.kafka_bootstrap == bootstrap


@pytest.mark.parametrize("name", OVERLAYS)
def test_every_linkcast_variable_is_a_setting_and_every_command_real(rendered, name):
    known = known_variables()
    parser = build_parser()
    manifests = rendered[name]
    config = one(manifests, "ConfigMap", "linkcast-config")["data"]
    assert not set(config) - known, set(config) - known
    for container in [worker_container(manifests), api_container(manifests)]:
        names = {e["name"] for e in container.get("env", [])}
        assert not names - known, names - known
        args = parser.parse_args(container["args"])
        assert callable(args.func)


@pytest.mark.parametrize("name", OVERLAYS)
def test_workers_keep_rocksdb_state_on_their_own_volumes(rendered, name):
    manifests = rendered[name]
    worker = one(manifests, "StatefulSet", "linkcast-worker")
    spec = worker["spec"]["template"]["spec"]
    container = worker_container(manifests)
    assert container["args"] == ["worker"]
    assert spec["enableServiceLinks"] is False
    data_dir = str(settings_of(manifests).data_dir)
    claims = {c["metadata"]["name"] for c in worker["spec"]["volumeClaimTemplates"]}
    state = [m for m in container["volumeMounts"] if m["mountPath"] == data_dir]
    assert len(state) == 1
    assert state[0]["name"] in claims
    service = one(manifests, "Service", worker["spec"]["serviceName"])
    assert service["spec"]["clusterIP"] == "None"
    port = settings_of(manifests).worker_port
    assert [p["containerPort"] for p in container["ports"]] == [port]
    for probe in ["startupProbe", "livenessProbe", "readinessProbe"]:
        assert container[probe]["httpGet"]["port"] == container["ports"][0]["name"], probe
    assert container["resources"]["requests"]
    assert container["resources"]["limits"]["memory"]
    pdb = one(manifests, "PodDisruptionBudget", "linkcast-worker")
    labels = worker["spec"]["template"]["metadata"]["labels"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()


@pytest.mark.parametrize("name", OVERLAYS)
def test_keda_scales_the_workers_on_their_consumer_lag(rendered, name):
    manifests = rendered[name]
    settings = settings_of(manifests)
    scaled = one(manifests, "ScaledObject", "linkcast-worker")["spec"]
    assert scaled["scaleTargetRef"]["kind"] == "StatefulSet"
    assert scaled["scaleTargetRef"]["name"] == "linkcast-worker"
    assert 1 <= scaled["minReplicaCount"] <= scaled["maxReplicaCount"] <= settings.partitions
    (trigger,) = scaled["triggers"]
    assert trigger["type"] == "kafka"
    meta = trigger["metadata"]
    # the group that commits the flows offsets: the flows reader's, or Faust's
    group = flows_group(settings.app_id) if settings.reads_flows_directly else settings.app_id
    assert meta["consumerGroup"] == group
    assert meta["topic"] == Topics.from_settings(settings).flows
    assert meta["bootstrapServers"] == settings.kafka_bootstrap
    worker = one(manifests, "StatefulSet", "linkcast-worker")
    assert scaled["minReplicaCount"] <= worker["spec"]["replicas"] <= scaled["maxReplicaCount"]


@pytest.mark.parametrize("name", OVERLAYS)
def test_the_api_has_probes_resources_an_hpa_and_its_keys_from_a_secret(rendered, name):
    manifests = rendered[name]
    deployment = one(manifests, "Deployment", "linkcast-api")
    spec = deployment["spec"]["template"]["spec"]
    container = api_container(manifests)
    assert spec["enableServiceLinks"] is False
    env = {e["name"]: e for e in container["env"]}
    port = int(env["LINKCAST_API_PORT"]["value"])
    assert container["ports"] == [{"name": "http", "containerPort": port}]
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert container["resources"]["requests"]
    assert container["resources"]["limits"]["memory"]
    assert "LINKCAST_API_MODE" not in env, "production mode"
    key = env["LINKCAST_API_JWT_KEY"]["valueFrom"]["secretKeyRef"]
    clients = Path(env["LINKCAST_API_CLIENTS_FILE"]["value"])
    mount = next(m for m in container["volumeMounts"] if m["mountPath"] == str(clients.parent))
    volume = next(v for v in spec["volumes"] if v["name"] == mount["name"])
    assert volume["secret"]["secretName"] == key["name"]
    assert [i["path"] for i in volume["secret"]["items"]] == [clients.name]
    hpa = one(manifests, "HorizontalPodAutoscaler", "linkcast-api")["spec"]
    assert hpa["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "linkcast-api",
    }
    assert hpa["minReplicas"] <= hpa["maxReplicas"]


@pytest.mark.parametrize("name", OVERLAYS)
def test_network_policies_cover_every_linkcast_pod_and_let_kafka_through(rendered, name):
    manifests = rendered[name]
    policies = of_kind(manifests, "NetworkPolicy")
    kafka_port = one(manifests, "Kafka", "linkcast")["spec"]["kafka"]["listeners"][0]["port"]
    for workload in [
        one(manifests, "StatefulSet", "linkcast-worker"),
        one(manifests, "Deployment", "linkcast-api"),
    ]:
        labels = workload["spec"]["template"]["metadata"]["labels"]
        (policy,) = [
            p for p in policies if p["spec"]["podSelector"]["matchLabels"].items() <= labels.items()
        ]
        assert set(policy["spec"]["policyTypes"]) == {"Ingress", "Egress"}
        egress_ports = {p["port"] for rule in policy["spec"]["egress"] for p in rule["ports"]}
        assert {kafka_port, 53} <= egress_ports
        container_ports = {
            p["name"] for p in workload["spec"]["template"]["spec"]["containers"][0]["ports"]
        }
        ingress_ports = {p["port"] for rule in policy["spec"]["ingress"] for p in rule["ports"]}
        assert ingress_ports == container_ports


@pytest.mark.parametrize("name", OVERLAYS)
def test_service_monitors_scrape_metrics_under_the_jobs_the_rules_expect(rendered, name):
    manifests = rendered[name]
    rules_text = (REPO / "deploy" / "prometheus" / "rules.yml").read_text()
    for monitor in of_kind(manifests, "ServiceMonitor"):
        selector = monitor["spec"]["selector"]["matchLabels"]
        services = [
            s
            for s in of_kind(manifests, "Service")
            if selector.items() <= s["metadata"]["labels"].items()
        ]
        assert len(services) == 1, monitor["metadata"]["name"]
        service = services[0]
        port_names = {p["name"] for p in service["spec"]["ports"]}
        for endpoint in monitor["spec"]["endpoints"]:
            assert endpoint["port"] in port_names
            assert endpoint["path"] == "/metrics"
        # Under the operator the job label is the Service's name.
        assert f'job="{service["metadata"]["name"]}"' in rules_text


def test_the_prometheus_rule_carries_exactly_the_groups_of_rules_yml(rendered):
    groups = yaml.safe_load((REPO / "deploy" / "prometheus" / "rules.yml").read_text())["groups"]
    for manifests in rendered.values():
        rule = one(manifests, "PrometheusRule", "linkcast")
        assert rule["spec"]["groups"] == groups


def test_images_are_the_linkcast_image_at_one_tag(rendered):
    for name in OVERLAYS:
        images = {
            c["image"]
            for kind in ["StatefulSet", "Deployment"]
            for m in of_kind(rendered[name], kind)
            for c in m["spec"]["template"]["spec"]["containers"]
        }
        assert len(images) == 1, images
        (image,) = images
        assert image.rpartition("/")[2].startswith("linkcast:"), image
