"""The GitHub workflows and templates: every push and pull request runs the linters, mypy and pytest, and
CI publishes only tested, scanned images with the tags users pull.

GitHub Actions never runs in the test suite, so a typo here would show up only after a merge: these
checks parse the workflow files.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / ".github" / "workflows"


# --- workflows ----------------------------------------------------------------------------------------


def _workflows() -> dict[str, dict[Any, Any]]:
    loaded = {path.name: yaml.safe_load(path.read_text(encoding="utf-8")) for path in WORKFLOWS.glob("*.yml")}
    assert loaded, "no workflow in .github/workflows"
    return loaded


def _triggers(workflow: dict[Any, Any]) -> dict[str, Any]:
    # YAML 1.1 reads the key `on` as the boolean True.
    triggers = workflow.get("on", workflow.get(True))
    if isinstance(triggers, str):
        triggers = [triggers]
    assert triggers, "a workflow without triggers never runs"
    return triggers if isinstance(triggers, dict) else dict.fromkeys(triggers)


def _jobs() -> dict[str, dict[str, Any]]:
    jobs: dict[str, dict[str, Any]] = {}
    for workflow in _workflows().values():
        jobs.update(workflow["jobs"])
    return jobs


def _steps_using(job: dict[str, Any], action: str) -> list[dict[str, Any]]:
    return [step for step in job["steps"] if str(step.get("uses", "")).startswith(action + "@")]


def _make_recipe(target: str) -> str:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    match = re.search(rf"^{re.escape(target)}:.*\n((?:\t.*\n)+)", makefile, re.MULTILINE)
    assert match, f"Makefile has no recipe for {target}"
    return match.group(1)


def test_tests_run_ruff_mypy_and_pytest_on_every_push_and_pull_request() -> None:
    workflow = next(w for w in _workflows().values() if "test" in w["jobs"])
    triggers = _triggers(workflow)
    assert "push" in triggers
    assert "pull_request" in triggers
    assert not (triggers["push"] or {}).get("paths"), "tests must not be skipped for some files"
    commands = " ".join(step.get("run", "") for step in workflow["jobs"]["test"]["steps"])
    targets = re.findall(r"make (\w+)", commands)
    recipes = " ".join(_make_recipe(target) for target in targets)
    for tool in ("ruff check", "ruff format --check", "mypy", "pytest"):
        assert tool in recipes, f"the test job never runs {tool!r}"


def test_container_job_builds_both_platforms_scans_and_publishes_only_after_tests() -> None:
    job = _jobs()["container"]
    needs = job.get("needs") or []
    assert "test" in ([needs] if isinstance(needs, str) else needs), "publishing must wait for the tests"
    assert _steps_using(job, "docker/setup-qemu-action")
    assert _steps_using(job, "docker/setup-buildx-action")
    builds = _steps_using(job, "docker/build-push-action")
    publish = next(step for step in builds if step["with"].get("push") not in (None, False))
    assert set(publish["with"]["platforms"].split(",")) == {"linux/amd64", "linux/arm64"}
    assert publish["with"]["file"] == "Containerfile"
    # Only pushes publish; a pull request's expression must come out false.
    assert "github.event_name == 'push'" in publish["with"]["push"]
    steps = job["steps"]
    scan = _steps_using(job, "aquasecurity/trivy-action")
    assert scan, "no vulnerability scan"
    assert steps.index(scan[0]) < steps.index(publish), "scan before anything is pushed"
    assert str(scan[0]["with"]["exit-code"]) == "1", "a finding must fail the job"


def test_container_job_logs_in_to_quay_with_the_robot_secrets_on_push_only() -> None:
    job = _jobs()["container"]
    (login,) = _steps_using(job, "docker/login-action")
    assert login["with"]["registry"] == "quay.io"
    assert login["with"]["username"] == "${{ secrets.QUAY_USERNAME }}"
    assert login["with"]["password"] == "${{ secrets.QUAY_PASSWORD }}"
    assert "github.event_name == 'push'" in login["if"]


def test_images_are_tagged_latest_on_main_and_by_branch_and_commit() -> None:
    job = _jobs()["container"]
    (meta,) = _steps_using(job, "docker/metadata-action")
    assert meta["with"]["images"] in ("quay.io/flightctl/flightctl-mcp", "${{ env.IMAGE }}")
    tags = [line.strip() for line in meta["with"]["tags"].splitlines() if line.strip()]
    assert "type=raw,value=latest,enable={{is_default_branch}}" in tags
    assert "type=ref,event=branch" in tags
    assert any(tag.startswith("type=sha") for tag in tags)
    image = next(w for w in _workflows().values() if "container" in w["jobs"]).get("env", {}).get("IMAGE")
    assert image in (None, "quay.io/flightctl/flightctl-mcp")


def test_every_action_is_pinned_to_a_version() -> None:
    for name, workflow in _workflows().items():
        for job_name, job in workflow["jobs"].items():
            for step in job.get("steps", []):
                uses = step.get("uses")
                if uses:
                    ref = uses.partition("@")[2]
                    assert re.fullmatch(r"v?\d+\.\d+(\.\d+)?|[0-9a-f]{40}", ref), f"{name} {job_name}: {uses}"


def test_issue_and_pull_request_templates_are_present_and_valid() -> None:
    forms = sorted((ROOT / ".github" / "ISSUE_TEMPLATE").glob("*.yml"))
    assert {form.name for form in forms} >= {"bug_report.yml", "feature_request.yml", "config.yml"}
    for form in forms:
        document = yaml.safe_load(form.read_text(encoding="utf-8"))
        if form.name != "config.yml":
            for key in ("name", "description", "body"):
                assert document[key], f"{form.name}: empty {key}"
            ids = [item["id"] for item in document["body"] if "id" in item]
            assert len(ids) == len(set(ids)), f"{form.name}: duplicate ids"
    assert "make test" in (ROOT / ".github" / "PULL_REQUEST_TEMPLATE.md").read_text(encoding="utf-8")


def test_the_image_is_tagged_with_the_version_server_json_names() -> None:
    job = _jobs()["container"]
    (meta,) = _steps_using(job, "docker/metadata-action")
    tags = [line.strip() for line in meta["with"]["tags"].splitlines() if line.strip()]
    assert any(tag.startswith("type=raw,value=${{ steps.version.outputs.version }}") for tag in tags), tags
