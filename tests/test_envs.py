"""The conda environments (--sdm conda) must name the same packages and versions as pyproject.toml."""

import re
import tomllib

import pytest
import yaml

FAISS = {"cpu": "faiss-cpu", "gpu": "faiss-gpu-cu12"}


def _requirements(lines):
    specs = {}
    for line in lines:
        if line.startswith("-"):
            continue  # pip options such as --extra-index-url
        name = re.split(r"[<>=!~; ]", line, maxsplit=1)[0].lower()
        specs[name] = line.replace(" ", "")
    return specs


@pytest.fixture(scope="module")
def project(repo_root):
    return tomllib.loads((repo_root / "pyproject.toml").read_text())["project"]


@pytest.mark.parametrize("kind", ["cpu", "gpu"])
def test_env_names_the_projects_dependencies(repo_root, project, kind):
    env = yaml.safe_load((repo_root / "envs" / f"{kind}.yaml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    in_env = _requirements(pip)
    wanted = _requirements(project["dependencies"] + project["optional-dependencies"][kind])
    for name, spec in wanted.items():
        assert name in in_env, f"envs/{kind}.yaml lacks {name}"
        if name not in ("torch", "torchvision"):  # pinned exactly in the envs (as the Makefile installs them)
            assert in_env[name] == spec, (name, in_env[name], spec)
    assert FAISS[kind] in in_env
    assert in_env["torch"] == "torch==2.14.1" and in_env["torchvision"] == "torchvision==0.29.1"
    assert "python=3.11" in env["dependencies"]


def test_every_rule_names_an_environment(repo_root):
    for rules in (repo_root / "workflow" / "rules").glob("*.smk"):
        text = rules.read_text()
        scripts = len(re.findall(r"^\s+script:", text, re.M))
        envs = len(re.findall(r'^\s+conda:\s*\n\s+"\.\./\.\./envs/(cpu|gpu)\.yaml"', text, re.M))
        assert scripts == envs, f"{rules.name}: {scripts} scripted rules, {envs} with a conda env"
