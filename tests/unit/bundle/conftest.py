"""Helpers to write small bundles into tmp_path and load them without the real environment."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from lakestack.bundle import Bundle, load_bundle

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "bundles"
USER = "jane.doe@example.com"

Writer = Callable[..., Path]
Loader = Callable[..., Bundle]


@pytest.fixture
def write(tmp_path: Path) -> Writer:
    """Write files (name -> YAML text, dedented) under tmp_path; return tmp_path."""

    def _write(files: dict[str, str] | None = None, **named: str) -> Path:
        for name, text in {**(files or {}), **named}.items():
            path = tmp_path / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return tmp_path

    return _write


@pytest.fixture
def load(tmp_path: Path) -> Loader:
    """load_bundle on tmp_path with an empty environment and a fixed user."""

    def _load(path: Path | None = None, **kwargs: Any) -> Bundle:
        kwargs.setdefault("environ", {})
        kwargs.setdefault("user", USER)
        return load_bundle(path or tmp_path, **kwargs)

    return _load


@pytest.fixture
def notebook(tmp_path: Path) -> Callable[[str], Path]:
    """Create a Databricks notebook source file at a path relative to tmp_path."""

    def _make(rel: str) -> Path:
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("# Databricks notebook source\nx = 1\n", encoding="utf-8")
        return path

    return _make
