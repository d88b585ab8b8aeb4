"""Who may call ``POST /admin/reload``: a caller on this machine, not relayed, with the token.

Three checks, all required:

1. **Not relayed.** A request carrying any forwarded-address header
   (``Forwarded``, ``X-Forwarded-*``, ``X-Real-IP``, ``CF-Connecting-IP``,
   ``True-Client-IP``, ``Via``, ...) came through a proxy: its peer address is
   the proxy's, not the caller's.
2. **Loopback peer** (127.0.0.0/8, ::1). Not enough on its own: a local proxy
   that adds no header (nginx's default) or a sidecar connecting from
   127.0.0.6 (Istio) relays anyone.
3. **The reload token**, ``Authorization: Bearer <token>``, compared in
   constant time. It comes from the environment variable named by
   ``serving.reload_token_env`` when that is set, else from the file
   ``serving.reload_token_file``, which `salarymodel serve` creates (mode
   0600, 256 random bits) when it is absent; ``--reload`` on the CLI reads it.

Every refusal is a 403 whose message says which check failed (never the token).
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
import re
import secrets
from collections.abc import Iterable, Mapping
from pathlib import Path

from salarymodel.config.settings import Settings, resolve_path

logger = logging.getLogger("salarymodel.serving")

# Headers a proxy or CDN adds to name the original client. Matched by exact
# name, and by pattern below for the many vendor variants.
_RELAY_HEADERS = frozenset(
    {"forwarded", "via", "x-real-ip", "x-client-ip", "x-cluster-client-ip", "client-ip",
     "cf-connecting-ip", "cf-connecting-ipv6", "true-client-ip", "fastly-client-ip",
     "akamai-client-ip", "x-originating-ip", "x-remote-ip", "x-remote-addr",
     "x-envoy-external-address", "x-proxyuser-ip", "x-appengine-user-ip",
     "x-azure-clientip", "x-azure-socketip"}
)  # fmt: skip
_RELAY_PREFIXES = ("x-forwarded-", "x-original-forwarded-", "x-envoy-")
_RELAY_SUFFIXES = ("-client-ip", "-connecting-ip", "-real-ip", "-remote-addr")


# A run of characters with a slash in it: a path (or URL) in an error message.
_PATH = re.compile(r"[^\s'\"()\[\]{},;]*/[^\s'\"()\[\]{},;]*")


def without_paths(text: str) -> str:
    """``text`` with each path shortened to its last part: an answer names versions and
    files, never where the service keeps them (``/tmp/.../bundle/booster.txt`` ->
    ``booster.txt``); the server's log keeps the full message."""
    return _PATH.sub(lambda m: next((p for p in reversed(m[0].split("/")) if p), "-"), text)


class AdminRefused(Exception):
    """Why a caller may not reload (the 403's message)."""


def relay_headers(names: Iterable[str]) -> list[str]:
    """The forwarded-address headers among ``names`` (any case)."""
    found = []
    for name in names:
        lower = name.lower()
        if (
            lower in _RELAY_HEADERS
            or lower.startswith(_RELAY_PREFIXES)
            or lower.endswith(_RELAY_SUFFIXES)
        ):
            found.append(lower)
    return found


def is_loopback(host: str | None, headers: Mapping[str, str] | None = None) -> bool:
    """True for a caller on this machine (127.0.0.0/8, ::1); never for a relayed request."""
    if headers is not None and relay_headers(headers.keys()):
        return False
    if not host:
        return False
    try:
        address = ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return (mapped or address).is_loopback


def token_file(settings: Settings) -> Path:
    """Where the reload token is kept when the environment does not give it."""
    return resolve_path(settings.serving.reload_token_file)


def ensure_token_file(settings: Settings) -> Path | None:
    """Create the token file (0600, random) if there is neither a token variable nor a file.

    Returns the file, or None when the token comes from the environment.
    Two processes starting together both end up reading the one file written.
    """
    if os.environ.get(settings.serving.reload_token_env):
        return None
    path = token_file(settings)
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # O_EXCL: never overwrite a token another process just wrote; 0600 from
        # the start, so there is no moment when others could read it.
        handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path
    with os.fdopen(handle, "w") as file:
        file.write(secrets.token_urlsafe(32) + "\n")
    logger.info("created the reload token file %s (mode 0600)", path)
    return path


def read_token(settings: Settings) -> str | None:
    """The reload token: the environment variable if set, else the file's first line."""
    value = os.environ.get(settings.serving.reload_token_env, "").strip()
    if value:
        return value
    try:
        value = token_file(settings).read_text().strip()
    except OSError:
        return None
    return value or None


def bearer(headers: Mapping[str, str]) -> str | None:
    """The token of an ``Authorization: Bearer ...`` header, if there is one."""
    value = headers.get("authorization", "")
    scheme, _, token = value.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def check_admin(host: str | None, headers: Mapping[str, str], expected: str | None) -> None:
    """Raise :class:`AdminRefused` unless the caller may reload (see the module docstring)."""
    relayed = relay_headers(headers.keys())
    if relayed:
        raise AdminRefused(f"reload refuses relayed requests (header {relayed[0]})")
    if not is_loopback(host):
        raise AdminRefused("reload is accepted only from this machine (loopback, not relayed)")
    if not expected:
        raise AdminRefused("reload is disabled: no reload token is configured")
    given = bearer(headers)
    if given is None:
        raise AdminRefused("reload needs the reload token (Authorization: Bearer <token>)")
    # Constant time: how much of a guess matches must not show in the timing.
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise AdminRefused("wrong reload token")
