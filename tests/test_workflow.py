"""The GPU workflow (.github/workflows/book.yml), which never runs here: valid against GitHub's workflow schema
(check-jsonschema's vendored copy, offline; the `test` extra installs it), and doing what the README says."""
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
WORKFLOW = ROOT / ".github" / "workflows" / "book.yml"
# The oldest major of each action this workflow may use (older ones run on Node 16 or 20, or are retired).
MINIMUM_MAJOR = {"actions/checkout": 4, "actions/setup-python": 5, "actions/cache": 4,
                 "actions/configure-pages": 5, "actions/upload-pages-artifact": 3, "actions/deploy-pages": 4}


@pytest.fixture(scope="module")
def workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


def build_steps(workflow: dict) -> list[dict]:
    return workflow["jobs"]["build"]["steps"]


def index_of(steps: list[dict], pattern: str) -> int:
    found = [i for i, s in enumerate(steps) if re.search(pattern, s.get("run", "") + s.get("uses", ""))]
    assert found, f"no step matches {pattern!r}"
    return found[0]


def test_workflow_is_valid_against_githubs_schema():
    pytest.importorskip("check_jsonschema", reason="the test extra installs check-jsonschema: run scripts/setup.sh")
    result = subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows",
                             str(WORKFLOW)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_workflow_uses_current_majors_of_its_actions(workflow):
    used = [s["uses"] for job in workflow["jobs"].values() for s in job["steps"] if "uses" in s]
    assert {u.split("@")[0] for u in used} == set(MINIMUM_MAJOR), used
    old = [u for u in used if int(re.fullmatch(r"v(\d+)(\.\d+)*", u.split("@")[1]).group(1)) < MINIMUM_MAJOR[u.split("@")[0]]]
    assert not old, f"outdated actions: {old}"


def test_workflow_names_its_parameters_and_checks_the_gpu_then_the_site(workflow):
    steps = build_steps(workflow)
    params = workflow["env"]["PARAMS"]
    settings = yaml.safe_load((ROOT / params).read_text())["all"]
    assert settings["device"] == "cuda" and settings["dtype"] != "auto", "the published run must not rely on auto"
    assert settings["profile"], f"{params} should name its profile of shared tuning runs"
    book = index_of(steps, r'scripts/book\.sh "\$PARAMS"')
    gpu = index_of(steps, r"torch\.cuda\.is_available\(\)")
    site = index_of(steps, r"scripts/check_site\.py _build/html")
    upload = index_of(steps, r"actions/upload-pages-artifact")
    assert index_of(steps, r"scripts/setup\.sh") < gpu < book < site < upload
    assert index_of(steps, r"actions/configure-pages") < upload
    assert steps[upload]["with"]["path"] == "_build/html"


def test_workflow_caches_the_environment_and_the_artifacts(workflow):
    caches = [s for s in build_steps(workflow) if s.get("uses", "").startswith("actions/cache@")]
    paths = {p for s in caches for p in s["with"]["path"].split()}
    assert {".venv", "artifacts"} <= paths
    env_key = next(s["with"]["key"] for s in caches if ".venv" in s["with"]["path"].split())
    assert all(f in env_key for f in ("pyproject.toml", "constraints.txt", "scripts/setup.sh")), env_key
    assert workflow["concurrency"]["group"] and workflow["concurrency"]["cancel-in-progress"] is False
