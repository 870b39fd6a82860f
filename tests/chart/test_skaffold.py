"""skaffold.yaml agrees with the chart it deploys (no skaffold binary here: its module is not on the Go proxy,
so the file is checked against the chart instead of being run)."""

from __future__ import annotations

import re

import pytest
import yaml

from tests.chart.chartlib import CHART, COMPONENTS, PORTS, REPO_ROOT


@pytest.fixture(scope="module")
def skaffold() -> dict:
    docs = [d for d in yaml.safe_load_all((REPO_ROOT / "skaffold.yaml").read_text()) if d]
    assert len(docs) == 1
    return docs[0]


def test_one_artifact_built_from_the_repository_root(skaffold: dict) -> None:
    assert re.fullmatch(r"skaffold/v4beta\d+", skaffold["apiVersion"])
    assert skaffold["kind"] == "Config"
    (artifact,) = skaffold["build"]["artifacts"]
    assert artifact["context"] == "."
    assert (REPO_ROOT / artifact["docker"]["dockerfile"]).is_file()


def test_image_reaches_helm_through_set_value_templates(skaffold: dict) -> None:
    image = skaffold["build"]["artifacts"][0]["image"]
    (release,) = skaffold["deploy"]["helm"]["releases"]
    assert (REPO_ROOT / release["chartPath"]).resolve() == CHART.resolve()
    templates = release["setValueTemplates"]
    assert templates == {
        "image.repository": f"{{{{.IMAGE_REPO_{image}}}}}",
        "image.tag": f"{{{{.IMAGE_TAG_{image}}}}}",
        "signing.publicKeys": "{{.QE_SIGNING__PUBLIC_KEYS}}",
    }
    # The private half reaches risk only as the Secret the before-deploy hook makes from the shell.
    secret = release["setValues"]["signing.privateKeySecret"]
    (hook,) = skaffold["deploy"]["helm"]["hooks"]["before"]
    script = " ".join(hook["host"]["command"])
    assert f"create secret generic {secret}" in script and "QE_SIGNING__PRIVATE_KEY:?" in script
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    for key in (*templates, *release.get("setValues", {})):
        node = values
        for part in key.split("."):
            assert part in node, f"{key} is not a chart value"
            node = node[part]
    for values_file in release["valuesFiles"]:
        assert (REPO_ROOT / values_file).is_file()


def test_profiles_activate_by_kube_context_without_index_patches(skaffold: dict) -> None:
    profiles = {p["name"]: p for p in skaffold["profiles"]}
    assert set(profiles) >= {"kind", "minikube"}
    assert profiles["kind"]["activation"] == [{"kubeContext": "kind-.*"}]
    assert profiles["minikube"]["activation"] == [{"kubeContext": "minikube"}]
    for profile in profiles.values():
        for patch in profile.get("patches", []):
            assert not re.search(r"/\d+(/|$)", patch["path"]), f"patch by array index: {patch['path']}"


def test_port_forwards_match_the_rendered_services(skaffold: dict, render) -> None:
    (release,) = skaffold["deploy"]["helm"]["releases"]
    rendered = render(
        [REPO_ROOT / f for f in release["valuesFiles"]], release=release["name"], namespace=release["namespace"]
    )
    services = {s["metadata"]["name"]: s["spec"]["ports"][0]["port"] for s in rendered.of_kind("Service")}
    forwards = skaffold["portForward"]
    assert len(forwards) == len(COMPONENTS)
    for forward in forwards:
        assert forward["resourceType"] == "service"
        assert forward["namespace"] == release["namespace"]
        assert services[forward["resourceName"]] == forward["port"] == forward["localPort"]
    assert {f["port"] for f in forwards} == set(PORTS.values())


def test_skaffold_builds_the_image_as_make_image_does(skaffold: dict) -> None:
    (artifact,) = skaffold["build"]["artifacts"]
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert artifact["docker"]["buildArgs"] == {"VERSION": chart["appVersion"]}  # make image: VERSION=$TAG
    make = (REPO_ROOT / "tools" / "image" / "build.sh").read_text()
    assert "DOCKER_BUILDKIT=0" in make and '--build-arg "VERSION=$TAG"' in make
    # The legacy builder everywhere: BuildKit pulls its frontend image, which cannot work with no registry.
    assert skaffold["build"]["local"]["useBuildkit"] is False
    for profile in skaffold["profiles"]:
        assert profile["build"]["local"].get("useBuildkit", False) is False
    (release,) = skaffold["deploy"]["helm"]["releases"]
    assert release["valuesFiles"] == ["charts/quantumedge/ci/dev-values.yaml"]
