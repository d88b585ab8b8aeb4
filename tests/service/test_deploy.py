"""The Kubernetes manifests under deploy/: valid against Kubernetes' schemas, and
saying what the service needs (image, ports, probes, resources from measurement)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path, PurePosixPath

import pytest
import yaml

from salarymodel.config.settings import load_settings
from salarymodel.serving.readiness import NotReady, stop_process, wait_until_ready

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
    # `bentoml build` reads bentofile.yaml, which names the bento.
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    name = yaml.safe_load((ROOT / "bentofile.yaml").read_text())["name"]
    image = _container(manifests)["image"]
    if "@sha256:" in image:  # pinned: the bento's name, by an immutable digest
        repository, digest = image.split("@sha256:")
        assert repository.rsplit("/", 1)[-1].split(":")[0] == name
        assert len(digest) == 64 and int(digest, 16) >= 0
        return
    assert image == f"{name}:{project['version']}"
    # A movable tag: the docs say how to pin it by digest, and the manifest points there.
    docs = (ROOT / "docs" / "scaling.md").read_text()
    assert "### Pinning the image" in docs and f"{name}@sha256:" in docs
    assert "Pinning the image" in (DEPLOY / "deployment.yaml").read_text()


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


def _cpus(quantity: str) -> float:
    return float(quantity[:-1]) / 1000 if quantity.endswith("m") else float(quantity)


def test_the_memory_limit_is_above_the_measured_batch_peak(manifests) -> None:
    """benchmarks/batch_memory.py's figure, measured under the configured batch limits.

    16 concurrent maximum batches against a replica's arbiter and workers; a
    change to the limits (or the worker count) makes the figure stale, and
    this fails until it is measured again.
    """
    from salarymodel.serving.schemas import BATCH_ROUTE, MAX_BATCH, MAX_BODY_BYTES

    measured = json.loads((ROOT / "benchmarks" / "batch_memory.json").read_text())
    assert measured["limits"] == {
        "batch_jobs": MAX_BATCH, "batch_bytes": MAX_BODY_BYTES[BATCH_ROUTE]
    }  # fmt: skip
    container = _container(manifests)
    env = {e["name"]: e["value"] for e in container["env"]}
    assert measured["workers"] == int(env["SALARYMODEL_WORKERS"])
    assert measured["shapes"] and all(
        shape["clients"] >= 16 and set(shape["statuses"]) == {"200"}
        for shape in measured["shapes"].values()
    )
    peak_mb = max(shape["peak_mb"] for shape in measured["shapes"].values())
    assert peak_mb == measured["peak_mb"]
    # The figures are MiB (resident bytes / 2**20). Half as much again above the
    # peak: a reload holds a second model per worker for a moment, and the
    # benchmark's machine is not the node.
    assert peak_mb * 1.5 < _mebibytes(container["resources"]["limits"]["memory"])
    # The docs state the same figure.
    assert f"{peak_mb:,.1f} MiB" in (ROOT / "docs" / "scaling.md").read_text()


def test_the_pod_is_hardened(manifests) -> None:
    pod = manifests["Deployment"]["spec"]["template"]["spec"]
    container = _container(manifests)
    assert pod["automountServiceAccountToken"] is False
    assert "hostNetwork" not in pod and "hostPID" not in pod
    for context in (pod["securityContext"], container["securityContext"]):
        assert context["seccompProfile"] == {"type": "RuntimeDefault"}
        assert context["runAsNonRoot"] is True and context["runAsUser"] != 0
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert "privileged" not in security
    # A CPU limit, and not below what the replica was planned and measured on.
    resources = container["resources"]
    assert _cpus(resources["limits"]["cpu"]) >= _cpus(resources["requests"]["cpu"])
    # Every mount is an emptyDir the pod owns (nothing from the node).
    volumes = {v["name"]: v for v in pod["volumes"]}
    for mount in container["volumeMounts"]:
        assert set(volumes[mount["name"]]) == {"name", "emptyDir"}, mount
        assert "sizeLimit" in volumes[mount["name"]]["emptyDir"]


def bento_paths() -> dict[str, PurePosixPath]:
    """Where the container holds what a checkout has (BentoML's Dockerfile layout).

    The project root is the bento's ``src/`` (bentofile.yaml: ``is_src_layout:
    false``; ``config.project_root`` finds configs/ there); BENTOML_HOME is the
    image's, unless the manifest sets another.
    """
    from bentoml._internal.container.generate import BENTO_HOME, BENTO_PATH

    bentofile = yaml.safe_load((ROOT / "bentofile.yaml").read_text())
    assert bentofile["python"]["is_src_layout"] is False
    return {
        "root": PurePosixPath(BENTO_PATH) / "src",
        "bentoml_home": PurePosixPath(BENTO_HOME),
        "tmp": PurePosixPath("/tmp"),
        "home": PurePosixPath(BENTO_HOME),
    }


def _on_a_mount(path: PurePosixPath, mounts: list[PurePosixPath]) -> bool:
    return any(path == m or m in path.parents for m in mounts)


@pytest.mark.slow
def test_every_path_the_service_writes_is_on_an_empty_dir(
    manifests, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> None:
    """Start the real service, send it work, and see where it wrote.

    The service runs with its project root, BENTOML_HOME, TMPDIR and HOME in
    separate folders; every file created or changed there is mapped to where
    the container has that folder, and must fall on one of the container's
    emptyDir mounts (the rest of its file system is read-only). Start-up
    writes the session's files under models/serving, the lock files, the
    BentoML export and Prometheus' folder; a reload writes under the same
    folders (models/registry-cache, the export).
    """
    import httpx
    from helpers.served import JOB, champion_root, free_port, project_env

    work = tmp_path_factory.mktemp("written")
    # A copy of the trained project: nothing else in the session writes here.
    root = work / "project"
    shutil.copytree(champion_root(tmp_path_factory), root, symlinks=True)
    folders = {"root": root, "bentoml_home": root / "bentoml_home",
               "tmp": work / "tmp", "home": work / "home"}  # fmt: skip
    for folder in folders.values():
        folder.mkdir(exist_ok=True)
    before = _files(folders.values())
    port = free_port()
    env = {**project_env(root), "TMPDIR": str(folders["tmp"]), "HOME": str(folders["home"])}
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "salarymodel"), "serve", "--port", str(port),
         "--workers", "1"],
        cwd=root, env=env, stdout=(work / "serve.log").open("w"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    request.addfinalizer(lambda: stop_process(process))
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(url, process, seconds=240)
    except NotReady as error:
        raise AssertionError(f"{error}\n{(work / 'serve.log').read_text()[-3000:]}") from None
    assert httpx.post(f"{url}/predict", json=JOB, timeout=30).status_code == 200
    batch = {"jobs": [JOB] * 2000}
    assert httpx.post(f"{url}/predict_batch", json=batch, timeout=60).status_code == 200
    assert httpx.post(f"{url}/explain", json=JOB, timeout=30).status_code == 200
    after = _files(folders.values())
    stop_process(process)
    written = {path for path, stamp in after.items() if before.get(path) != stamp}
    assert written, "the service wrote nothing at all: the check would be empty"
    container = bento_paths()
    env_in_pod = {e["name"]: e["value"] for e in _container(manifests)["env"]}
    if "BENTOML_HOME" in env_in_pod:
        container["bentoml_home"] = PurePosixPath(env_in_pod["BENTOML_HOME"])
    mounts = [PurePosixPath(m["mountPath"]) for m in _container(manifests)["volumeMounts"]]
    outside = []
    for path in sorted(written):
        # The most specific folder first: bentoml_home lies inside the project root here.
        name, folder = max(
            ((n, f) for n, f in folders.items() if f == path or f in path.parents),
            key=lambda item: len(item[1].parts),
        )
        in_pod = container[name] / path.relative_to(folder)
        if not _on_a_mount(in_pod, mounts):
            outside.append(f"{path} -> {in_pod}")
    assert not outside, "written outside every emptyDir:\n" + "\n".join(outside[:20])


def _files(folders) -> dict[Path, float]:
    """Every file and folder under ``folders`` with its modification time."""
    found = {}
    for folder in folders:
        for path in Path(folder).rglob("*"):
            if path.is_symlink():
                continue  # data/ -> the checkout's shipped data
            try:
                found[path] = path.stat().st_mtime_ns
            except OSError:
                continue
    return found


def _measured(pattern: str) -> float:
    """A figure docs/scaling.md states as measured (or planned), read from its text."""
    import re

    found = re.search(pattern, (ROOT / "docs" / "scaling.md").read_text())
    assert found, f"docs/scaling.md no longer states {pattern!r}"
    return float(found.group(1).replace(",", ""))


def test_resources_come_from_the_measured_service(manifests) -> None:
    """Requests, limits and the autoscaler against what was measured, not their own numbers."""
    container = _container(manifests)
    requests, limits = container["resources"]["requests"], container["resources"]["limits"]
    env = {e["name"]: e["value"] for e in container["env"]}
    # A worker a CPU: the workers the configuration serves with, as measured.
    workers = load_settings().serving.workers
    assert int(env["SALARYMODEL_WORKERS"]) == workers
    assert _cpus(requests["cpu"]) == workers
    measured = _measured(r"resident memory, ready \(arbiter \+ (\d+) workers\)")
    assert measured == workers
    # The memory request holds the resident memory measured after the load run,
    # without asking for twice that; the limit leaves room for a reload's second model.
    after_load = _measured(r"resident memory after the load run \| ([\d,]+) MB")
    assert after_load * 1e6 / 2**20 <= _mebibytes(requests["memory"]) <= 2 * after_load
    assert _mebibytes(limits["memory"]) >= 2 * _mebibytes(requests["memory"])
    hpa = manifests["HorizontalPodAutoscaler"]["spec"]
    assert hpa["scaleTargetRef"]["name"] == manifests["Deployment"]["metadata"]["name"]
    assert hpa["minReplicas"] >= 2  # one replica can restart while another serves
    (metric,) = hpa["metrics"]
    # The capacity plan's headroom: a replica planned at this share of its measured peak.
    planned = _measured(r"at \*\*(\d+)%\*\* of it")
    assert metric["resource"]["target"]["averageUtilization"] == planned
