"""The Kubernetes manifests under deploy/: valid against Kubernetes' schemas, and
saying what the service needs (image, ports, probes, resources from measurement)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
import yaml

from salarymodel.config import load_settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
KUBERNETES = "1.30"  # the oldest release the manifests are checked against


def _manifests() -> dict[str, dict]:
    found = {}
    for path in sorted(DEPLOY.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            found[document["kind"]] = document
    return found


@pytest.fixture(scope="module")
def manifests() -> dict[str, dict]:
    return _manifests()


def test_every_manifest_is_valid_kubernetes(manifests) -> None:
    import kubernetes_validate

    assert set(manifests) == {"Deployment", "Service", "HorizontalPodAutoscaler"}
    for document in manifests.values():
        # strict: an unknown or misspelt field (``readinessprobe``) is an error too
        kubernetes_validate.validate(document, KUBERNETES, strict=True)


def test_the_validator_refuses_a_misspelt_probe(manifests) -> None:
    import kubernetes_validate

    container = dict(manifests["Deployment"]["spec"]["template"]["spec"]["containers"][0])
    container["readinessprobe"] = container.pop("readinessProbe")
    broken = {**manifests["Deployment"]}
    broken["spec"] = {**broken["spec"], "template": {**broken["spec"]["template"]}}
    broken["spec"]["template"]["spec"] = {"containers": [container]}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES, strict=True)


def _container(manifests: dict[str, dict]) -> dict:
    (container,) = manifests["Deployment"]["spec"]["template"]["spec"]["containers"]
    return container


def test_the_image_is_the_bento_containerize_makes(manifests) -> None:
    # `bentoml build` reads [tool.bentoml.build]; the bento is named after the project.
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    project = pyproject["project"]
    name = pyproject["tool"]["bentoml"]["build"].get("name", project["name"])
    expected = f"{name}:{project['version']}"
    assert _container(manifests)["image"] == expected


def test_ports_probes_and_the_service_line_up(manifests) -> None:
    container = _container(manifests)
    env = {e["name"]: e["value"] for e in container["env"]}
    (port,) = container["ports"]
    assert port["containerPort"] == int(env["BENTOML_PORT"]) == 3000
    assert env["BENTOML_HOST"] == "0.0.0.0"  # the configs' 127.0.0.1 is unreachable in a pod
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": port["name"]}
    assert container["livenessProbe"]["httpGet"] == {"path": "/livez", "port": port["name"]}
    service = manifests["Service"]["spec"]
    assert service["ports"][0]["targetPort"] == port["name"]
    labels = manifests["Deployment"]["spec"]["template"]["metadata"]["labels"]
    assert service["selector"].items() <= labels.items()
    assert manifests["Deployment"]["spec"]["selector"]["matchLabels"].items() <= labels.items()


def _mebibytes(quantity: str) -> float:
    units = {"Mi": 1, "Gi": 1024}
    return float(quantity[:-2]) * units[quantity[-2:]]


def test_resources_come_from_the_measured_service(manifests) -> None:
    container = _container(manifests)
    requests, limits = container["resources"]["requests"], container["resources"]["limits"]
    env = {e["name"]: e["value"] for e in container["env"]}
    # One replica was measured on 2 cores with 2 workers (benchmarks/README.md).
    assert int(requests["cpu"]) == int(env["SALARYMODEL_WORKERS"]) == 2
    assert int(env["SALARYMODEL_WORKERS"]) == load_settings().serving.workers
    # Resident memory measured: 360 MB ready, 415 MB after the load run.
    assert 415 <= _mebibytes(requests["memory"]) <= 2 * 415
    assert _mebibytes(limits["memory"]) >= 2 * _mebibytes(requests["memory"])
    hpa = manifests["HorizontalPodAutoscaler"]["spec"]
    assert hpa["scaleTargetRef"]["name"] == manifests["Deployment"]["metadata"]["name"]
    assert hpa["minReplicas"] >= 2
    (metric,) = hpa["metrics"]
    assert metric["resource"]["target"]["averageUtilization"] == 60  # docs/scaling.md headroom
