"""The *approval* task: a deployment job goes on only once a person approved the version.

As on Databricks, the decision is a tag on the model version: ``approval`` = ``Approved`` or
``Rejected`` (any case). ``lakestack models approve`` sets it, with who, when and why, and
resumes the paused run; setting the tag any other way (a plain MLflow client) counts too, and
``lakestack scheduler`` notices it. While there is no decision the task does not keep a process
alive: it marks itself WAITING_FOR_APPROVAL and exits, and the run pauses. A development target
whose bundle sets ``lakestack.auto_approve: true`` approves by itself (recorded as such).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

from lakestack.errors import ApprovalError, TaskError
from lakestack.jobs.context import publish_task_values, request_approval
from lakestack.registry.client import APPROVAL_TAG, ModelRegistry

__all__ = [
    "APPROVED",
    "APPROVED_AT_TAG",
    "APPROVED_BY_TAG",
    "COMMENT_TAG",
    "REJECTED",
    "Decision",
    "check_approval",
    "main",
    "record_decision",
]

APPROVED = "Approved"
REJECTED = "Rejected"
APPROVED_BY_TAG = "lakestack.approval.by"
APPROVED_AT_TAG = "lakestack.approval.at"
COMMENT_TAG = "lakestack.approval.comment"
AUTO_APPROVE_ENV = "LAKESTACK_AUTO_APPROVE"


@dataclass(frozen=True)
class Decision:
    """A recorded decision on a model version (None fields when the tag was set by hand)."""

    state: str
    by: str | None
    at: str | None
    comment: str | None


def decision_of(tags: dict[str, str], tag: str = APPROVAL_TAG) -> Decision | None:
    """The decision recorded in a version's tags, if any (the tag's value, any case)."""
    value = tags.get(tag, "").strip().lower()
    if value not in (APPROVED.lower(), REJECTED.lower()):
        return None
    return Decision(
        APPROVED if value == APPROVED.lower() else REJECTED,
        tags.get(APPROVED_BY_TAG),
        tags.get(APPROVED_AT_TAG),
        tags.get(COMMENT_TAG),
    )


def record_decision(
    registry: ModelRegistry,
    name: str,
    version: int,
    state: str,
    *,
    user: str,
    comment: str | None = None,
    tag: str = APPROVAL_TAG,
) -> Decision:
    """Set the decision tags on a model version: the decision, who, when (UTC), why."""
    at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    tags = {tag: state, APPROVED_BY_TAG: user, APPROVED_AT_TAG: at}
    if comment:
        tags[COMMENT_TAG] = comment
    registry.set_version_tags(name, version, tags)
    if not comment:
        registry.delete_version_tag(name, version, COMMENT_TAG)
    return Decision(state, user, at, comment)


def check_approval(
    registry: ModelRegistry,
    name: str,
    version: int,
    *,
    auto_approve: bool = False,
    tag: str = APPROVAL_TAG,
) -> Decision | None:
    """The version's decision; with ``auto_approve``, an approval recorded now if there is none.

    Raises:
        TaskError: The version was rejected (the message says by whom and why).
    """
    found = decision_of(registry.get_version(name, version).tags, tag)
    if found is None and auto_approve:
        found = record_decision(
            registry,
            name,
            version,
            APPROVED,
            user="lakestack (auto_approve in a development target)",
            tag=tag,
        )
    if found is not None and found.state == REJECTED:
        who = f" by {found.by}" if found.by else ""
        why = f": {found.comment}" if found.comment else ""
        raise TaskError(f"model {name} version {version} was rejected{who}{why}")
    return found


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point ``approval``: succeed if approved, fail if rejected, else pause the run."""
    parser = argparse.ArgumentParser(prog="approval", description=__doc__)
    parser.add_argument("--model_name", required=True)
    parser.add_argument("--model_version", required=True, type=int)
    parser.add_argument("--tag", default=APPROVAL_TAG, help="the version tag holding the decision")
    args = parser.parse_args(argv)
    registry = ModelRegistry.default()
    auto = os.environ.get(AUTO_APPROVE_ENV) == "1"
    found = check_approval(
        registry, args.model_name, args.model_version, auto_approve=auto, tag=args.tag
    )
    if found is not None:
        why = f": {found.comment}" if found.comment else ""
        sys.stdout.write(
            f"{args.model_name} version {args.model_version} approved by {found.by or 'a tag'}"
            f"{' at ' + found.at if found.at else ''}{why}\n"
        )
        publish_task_values({"approved": True, "approved_by": found.by, "approved_at": found.at})
        return
    waiting = {
        "model_name": args.model_name,
        "model_version": args.model_version,
        "tag": args.tag,
    }
    sys.stdout.write(
        f"{args.model_name} version {args.model_version} waits for approval: "
        f"lakestack models approve {args.model_name} {args.model_version}\n"
    )
    if not request_approval(waiting):
        raise ApprovalError(
            f"model {args.model_name} version {args.model_version} is not approved; approve "
            f"it with: lakestack models approve {args.model_name} {args.model_version}"
        )
