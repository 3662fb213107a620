"""Package hygiene: one version, a license that matches the metadata, py.typed, the install hint."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import tomllib

import tokengym
from tokengym import _requires

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def test_the_version_has_one_source() -> None:
    project = PYPROJECT["project"]
    assert "version" not in project and project["dynamic"] == ["version"]
    attr = PYPROJECT["tool"]["setuptools"]["dynamic"]["version"]["attr"]
    assert attr == "tokengym._version.__version__"
    assert re.fullmatch(r"\d+\.\d+\.\d+", tokengym.__version__)
    citation = (ROOT / "CITATION.cff").read_text(encoding="utf-8")
    assert f"\nversion: {tokengym.__version__}\n" in citation
    assert "## [Unreleased]" in (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")


def test_license_file_matches_the_metadata() -> None:
    assert PYPROJECT["project"]["license"] == "MIT"
    assert (ROOT / "LICENSE").read_text(encoding="utf-8").startswith("MIT License\n")
    assert "\nlicense: MIT\n" in (ROOT / "CITATION.cff").read_text(encoding="utf-8")


def test_py_typed_is_installed_as_package_data() -> None:
    assert (ROOT / "tokengym" / "py.typed").is_file()
    assert PYPROJECT["tool"]["setuptools"]["package-data"]["tokengym"] == ["py.typed"]


def test_project_urls_point_at_the_projects_own_files() -> None:
    urls = PYPROJECT["project"]["urls"]
    assert urls == {"Documentation": "README.md", "Changelog": "CHANGELOG.md"}
    assert all((ROOT / target).is_file() for target in urls.values())


def test_install_hint_in_the_checkout_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(_requires.CHECKOUT)
    assert _requires.install_hint("torch") == 'pip install -e ".[torch]"'


def test_install_hint_elsewhere_names_the_checkout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert _requires.install_hint("sb3") == f'pip install -e "{_requires.CHECKOUT}[sb3]"'


class FakeDistribution:
    def __init__(self, direct_url: dict | None) -> None:
        self.direct_url = direct_url

    def read_text(self, name: str) -> str | None:
        assert name == "direct_url.json"
        return None if self.direct_url is None else json.dumps(self.direct_url)


@pytest.mark.parametrize(
    ("direct_url", "hint"),
    [
        ({"url": "file://{wheel}", "archive_info": {}}, 'pip install "{wheel}[ray]"'),
        (None, 'pip install "tokengym[ray]"'),  # from an index: no direct_url.json
        ({"url": "https://example.org/tokengym.whl"}, 'pip install "tokengym[ray]"'),
    ],
)
def test_install_hint_of_an_installed_wheel(
    direct_url: dict | None, hint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wheel = tmp_path / "tokengym-0.1.0-py3-none-any.whl"
    wheel.write_bytes(b"")
    if direct_url is not None:
        direct_url = {**direct_url, "url": direct_url["url"].format(wheel=wheel)}
    monkeypatch.setattr(_requires, "CHECKOUT", tmp_path / "site-packages")  # not a checkout
    monkeypatch.setattr(
        _requires.importlib.metadata, "distribution", lambda name: FakeDistribution(direct_url)
    )
    assert _requires.install_hint("ray") == hint.format(wheel=wheel)
