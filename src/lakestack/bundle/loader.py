"""``load_bundle``: bundle files to one validated ``Bundle`` for one target.

The steps, in order: find the file; read it and its includes; select the target; apply the
target's overrides (``merge.LIST_MERGE_KEYS``); choose variable values; substitute ``${...}``;
make task paths absolute; validate the specs; cross-check jobs and links; apply the target
mode and presets. Nothing here prints: warnings and ignored keys are returned on the Bundle.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping
from typing import Any, Literal

from lakestack.bundle.checks import check_resources, check_task_kinds, deployment_job_warnings
from lakestack.bundle.discover import current_user, find_bundle_file, read_git
from lakestack.bundle.files import read_bundle_files
from lakestack.bundle.interpolate import Interpolator
from lakestack.bundle.merge import MergedMap, merge
from lakestack.bundle.model import Bundle, GitInfo
from lakestack.bundle.paths import PathRewriter
from lakestack.bundle.presets import apply_presets
from lakestack.bundle.specs.resources import UNSUPPORTED_RESOURCE_TYPES, ResourcesSpec
from lakestack.bundle.specs.root import BundleSectionSpec, PresetsSpec, TargetSpec
from lakestack.bundle.specs.settings import LakestackSettings
from lakestack.bundle.validation import Validator, collect_ignored
from lakestack.bundle.variables import choose_variables
from lakestack.errors import ConfigError, TargetError, did_you_mean
from lakestack.utils.yaml import YamlMap

__all__ = ["load_bundle", "short_name"]


def short_name(user: str) -> str:
    """The user name before '@' with every non-alphanumeric character turned into '_'."""
    return re.sub(r"[^A-Za-z0-9]", "_", user.split("@", 1)[0])


def _mapping(value: Any) -> MergedMap:
    out = MergedMap()
    if isinstance(value, YamlMap):
        return merge(MergedMap(), value)  # type: ignore[no-any-return]
    if isinstance(value, dict):
        out.update(value)
    return out


def _select_target(doc: YamlMap, target: str | None) -> tuple[str, YamlMap]:
    if doc.get("targets") and doc.get("environments"):
        raise ConfigError(
            "both targets and environments are defined; environments is the old name of "
            "targets, keep one",
            location=doc.location("environments"),
        )
    targets: dict[str, Any] = doc.get("targets") or doc.get("environments") or {}
    if not targets:
        if target not in (None, "default"):
            raise TargetError(
                f"target '{target}' is not defined: the bundle defines no targets; "
                "drop -t/--target or add a targets mapping"
            )
        return "default", YamlMap()
    defaults = [n for n, t in targets.items() if isinstance(t, dict) and t.get("default") is True]
    if len(defaults) > 1:
        raise TargetError(
            f"several targets are marked default: true ({', '.join(defaults)}); keep one"
        )
    valid = ", ".join(targets)
    if target is None:
        if defaults:
            target = defaults[0]
        elif len(targets) == 1:
            target = next(iter(targets))
        else:
            raise TargetError(
                f"no default target; pass -t/--target with one of: {valid}, "
                "or mark one default: true"
            )
    if target not in targets:
        hint = did_you_mean(target, targets)
        raise TargetError(
            f"target '{target}' is not defined; valid targets: {valid}"
            + (f"; did you mean '{hint}'?" if hint else "")
        )
    body = targets[target]
    return target, body if isinstance(body, YamlMap) else YamlMap()


def _workspace_context(workspace: MergedMap, user: str) -> MergedMap:
    ctx = MergedMap(workspace)
    ctx.file, ctx.line, ctx.key_lines = workspace.file, workspace.line, dict(workspace.key_lines)
    ctx.key_files = dict(workspace.key_files)
    ctx["current_user"] = {"userName": user, "short_name": short_name(user)}
    ctx.setdefault(
        "root_path",
        "/Workspace/Users/${workspace.current_user.userName}/.bundle/${bundle.name}/${bundle.target}",
    )
    for name, leaf in (
        ("file_path", "files"),
        ("artifact_path", "artifacts"),
        ("state_path", "state"),
        ("resource_path", "resources"),
    ):
        ctx.setdefault(name, "${workspace.root_path}/" + leaf)
    return ctx


def load_bundle(
    path: str | os.PathLike[str] | None = None,
    *,
    target: str | None = None,
    variables: Mapping[str, str] | None = None,
    strict: bool = False,
    environ: Mapping[str, str] | None = None,
    user: str | None = None,
) -> Bundle:
    """Load, resolve and validate one target of a bundle.

    Args:
        path: A bundle file, or a folder searched (with its parents) for ``lakestack.yml``,
            ``lakestack.yaml``, ``databricks.yml`` or ``databricks.yaml``; None: the cwd.
        target: The target; None selects the default one.
        variables: ``--var name=value`` values.
        strict: Turn every warning (unknown keys in a ``databricks.yml``...) into an error.
        environ: The environment for ``BUNDLE_VAR_<name>`` and ``LAKESTACK_USER``; None:
            ``os.environ``.
        user: The current user; None: ``LAKESTACK_USER``, else the OS user.

    Returns:
        The validated bundle target.

    Raises:
        ConfigError: The bundle cannot be read or is not valid (with file, line and key).
        TargetError: The target does not exist, or several are marked default.
    """
    env: Mapping[str, str] = os.environ if environ is None else environ
    file = find_bundle_file(path)
    root = file.parent
    flavor: Literal["lakestack", "databricks"] = (
        "lakestack" if file.name.startswith("lakestack") else "databricks"
    )
    warnings: list[str] = []
    validator = Validator(lenient_unknown=flavor == "databricks" and not strict, warnings=warnings)
    rewriter = PathRewriter(root)
    doc, _ = read_bundle_files(file, validator, rewriter)
    target_name, body = _select_target(doc, target)
    target_spec = validator.validate(TargetSpec, body, f"targets.{target_name}")
    user = user or current_user(env)

    bundle_raw = merge(_mapping(doc.get("bundle")), _mapping(body.get("bundle")))
    if "git" in body:
        bundle_raw["git"] = merge(_mapping(bundle_raw.get("git")), _mapping(body["git"]))
    if not bundle_raw.get("name"):
        raise ConfigError(
            "bundle.name is required; add bundle: {name: <name>} to the bundle file",
            location=doc.location("bundle") if "bundle" in doc else doc.location(),
        )
    detected = read_git(root)
    config_git = _mapping(bundle_raw.get("git"))
    bundle_ctx = MergedMap(bundle_raw)
    bundle_ctx["target"] = bundle_ctx["environment"] = target_name
    bundle_ctx["git"] = {
        "origin_url": config_git.get("origin_url") or detected.origin_url,
        "branch": config_git.get("branch") or detected.branch,
        "commit": config_git.get("commit") or detected.commit,
    }
    workspace_ctx = _workspace_context(
        merge(_mapping(doc.get("workspace")), _mapping(body.get("workspace"))), user
    )
    resources_raw = merge(_mapping(doc.get("resources")), _mapping(body.get("resources")))
    chosen = choose_variables(
        _mapping(doc.get("variables")),
        _mapping(body.get("variables")),
        cli=dict(variables or {}),
        environ=env,
        validator=validator,
        warnings=warnings,
    )
    interp = Interpolator(
        {"bundle": bundle_ctx, "workspace": workspace_ctx, "resources": resources_raw}, chosen
    )
    declared = doc.get("variables")
    resolved_vars = {
        name: interp.variable(
            name,
            declared.location(name) if isinstance(declared, YamlMap) and name in declared else None,
        )
        for name in chosen
    }
    bundle_res = interp.resolve(bundle_ctx)
    workspace_res = interp.resolve(workspace_ctx)
    resources_res = interp.resolve(resources_raw)
    settings_res = interp.resolve(
        merge(_mapping(doc.get("lakestack")), _mapping(body.get("lakestack")))
    )
    presets_res = interp.resolve(merge(_mapping(doc.get("presets")), _mapping(body.get("presets"))))

    for rtype in list(resources_res):
        if rtype in UNSUPPORTED_RESOURCE_TYPES:
            where = resources_res.location(rtype)
            warnings.append(
                f"{where.file}:{where.line}: resource type {rtype} is not supported by "
                "lakestack and is ignored"
            )
            del resources_res[rtype]
    check_task_kinds(resources_res)
    rewriter.resolve(resources_res, workspace_res.get("file_path"))
    resources = validator.validate(ResourcesSpec, resources_res, "resources")
    settings = validator.validate(LakestackSettings, settings_res, "lakestack")
    presets = validator.validate(PresetsSpec, presets_res, "presets")
    section = validator.validate(BundleSectionSpec, bundle_raw, "bundle")
    check_resources(resources, resources_res)
    warnings.extend(deployment_job_warnings(resources))
    mode = target_spec.mode
    resources = apply_presets(resources, presets, mode, short_name(user))
    if settings.auto_approve and mode != "development":
        warnings.append(
            f"target {target_name}: lakestack.auto_approve is ignored because the target is not "
            "in mode: development (approval tasks wait for a person)"
        )

    ignored: list[str] = []
    collect_ignored(section, "bundle", ignored)
    collect_ignored(target_spec, f"targets.{target_name}", ignored)
    for key in ("host", "root_path"):
        if key in doc.get("workspace", {}) or key in body.get("workspace", {}):
            ignored.append(f"workspace.{key}")
    if "run_as" in doc:
        ignored.append("run_as")
    collect_ignored(resources, "resources", ignored)

    if strict and warnings:
        raise ConfigError(f"{warnings[0]} (--strict turns warnings into errors)")
    bundle = Bundle(
        name=str(bundle_res["name"]),
        target=target_name,
        mode=mode,
        root=root,
        file=file,
        flavor=flavor,
        settings=settings,
        resources=resources,
        variables=resolved_vars,
        git=GitInfo(**bundle_res["git"]),
        user=user,
        workspace=_plain(workspace_res),
        uuid=section.uuid,
        presets=presets.model_dump(mode="json", exclude_none=True, exclude_defaults=True),
        warnings=warnings,
        ignored=ignored,
    )
    canonical = json.dumps(bundle.to_dict(), sort_keys=True, separators=(",", ":"), default=str)
    bundle.content_hash = hashlib.sha256(canonical.encode()).hexdigest()
    return bundle


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value
