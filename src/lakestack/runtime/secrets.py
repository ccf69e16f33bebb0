"""``dbutils.secrets``: secrets from environment variables, never from files in the bundle.

``dbutils.secrets.get("ml", "api-key")`` reads ``LAKESTACK_SECRET_ML_API_KEY``: scope and key
upper-cased, every other character than a letter or digit turned into ``_``. CI systems and
secret managers all know how to set environment variables.
"""

from __future__ import annotations

import os
import re

from lakestack.errors import LakestackError, TerminalError

__all__ = ["SecretNotFoundError", "SecretsUtils", "secret_env_var"]

_PREFIX = "LAKESTACK_SECRET_"


class SecretNotFoundError(LakestackError, TerminalError):
    """No environment variable holds the secret."""


def secret_env_var(scope: str, key: str) -> str:
    """The environment variable that holds the secret ``key`` of ``scope``."""
    return _PREFIX + re.sub(r"[^A-Z0-9]", "_", f"{scope}_{key}".upper())


class SecretsUtils:
    """The ``dbutils.secrets`` API."""

    def get(self, scope: str, key: str) -> str:
        """The secret's value.

        Raises:
            SecretNotFoundError: the environment variable is not set.
        """
        name = secret_env_var(scope, key)
        value = os.environ.get(name)
        if value is None:
            raise SecretNotFoundError(
                f"secret '{key}' of scope '{scope}' is not set; set the environment variable {name}"
            )
        return value

    def getBytes(self, scope: str, key: str) -> bytes:  # noqa: N802
        """The secret's value as UTF-8 bytes."""
        return self.get(scope, key).encode("utf-8")
