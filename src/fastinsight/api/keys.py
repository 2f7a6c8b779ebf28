"""No default secrets: the API serves only with both keys set, or in explicit development mode.

Outside development mode a missing, empty, well-known or shared key stops start-up with
a message naming the settings to set. Development mode (``FASTINSIGHT_DEV_MODE=1`` or
``fastinsight serve --dev``) generates the missing keys for the process, logs them with
a warning, and answers loopback clients only (``LoopbackOnlyMiddleware``).
"""

from __future__ import annotations

import ipaddress
import logging
import secrets

from pydantic import SecretStr

from fastinsight.config import Settings
from fastinsight.errors import ConfigurationError

log = logging.getLogger(__name__)

# Values that shipped as defaults or appear in examples: anyone can guess them.
WELL_KNOWN_KEYS = frozenset({
    "dev-api-key", "dev-admin-key", "changeme", "changethis", "secret", "password", "admin",
    "api-key", "apikey", "test", "key",
})
KEY_SETTINGS = {"api_key": "FASTINSIGHT_API_KEY", "admin_key": "FASTINSIGHT_ADMIN_KEY"}
GENERATE_HINT = "python -c 'import secrets; print(secrets.token_urlsafe(32))'"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _value(secret: SecretStr | None) -> str:
    return secret.get_secret_value() if secret is not None else ""


def key_problems(settings: Settings) -> list[str]:
    """What is wrong with the configured keys; empty when both may serve."""
    problems = []
    for name, env in KEY_SETTINGS.items():
        value = _value(getattr(settings, name))
        if not value.strip():
            problems.append(f"{env} is not set")
        elif value.lower() in WELL_KNOWN_KEYS:
            problems.append(f"{env} is a well-known value")
    api, admin = _value(settings.api_key), _value(settings.admin_key)
    if api and api == admin:
        problems.append("FASTINSIGHT_API_KEY and FASTINSIGHT_ADMIN_KEY are the same")
    operator = _value(settings.operator_key)
    if settings.operator_key is not None and not operator.strip():
        problems.append("FASTINSIGHT_OPERATOR_KEY is set but empty")
    elif operator.lower() in WELL_KNOWN_KEYS:
        problems.append("FASTINSIGHT_OPERATOR_KEY is a well-known value")
    elif operator and operator in (api, admin):
        problems.append("FASTINSIGHT_OPERATOR_KEY is the same as another key")
    return problems


def generated_dev_keys(settings: Settings) -> dict[str, str]:
    """Fresh keys for the settings development mode leaves unset (name -> value)."""
    return {name: secrets.token_urlsafe(24) for name in KEY_SETTINGS
            if not _value(getattr(settings, name)).strip()}


def checked_settings(settings: Settings) -> Settings:
    """``settings`` fit to serve: keys checked, or generated in development mode.

    Raises :class:`ConfigurationError` outside development mode when a key is missing
    or guessable."""
    problems = key_problems(settings)
    if not settings.dev_mode:
        if problems:
            raise ConfigurationError(
                "refusing to start: " + "; ".join(problems) + ". Set both keys to long random "
                f"values (e.g. {GENERATE_HINT}), or set FASTINSIGHT_DEV_MODE=1 (fastinsight serve "
                "--dev) for a local development server that answers 127.0.0.1 only."
            )
        return settings
    generated = generated_dev_keys(settings)
    if generated:
        settings = settings.model_copy(update={k: SecretStr(v) for k, v in generated.items()})
        log.warning(
            "DEVELOPMENT MODE: generated keys for this process only: %s",
            ", ".join(f"{KEY_SETTINGS[k]}={v}" for k, v in generated.items()),
        )
    remaining = key_problems(settings)
    log.warning(
        "DEVELOPMENT MODE: answering loopback clients (127.0.0.1, ::1) only; never use it on a "
        "shared or public host%s", f" ({'; '.join(remaining)})" if remaining else "",
    )
    return settings
