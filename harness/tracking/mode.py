"""Whether a sweep logs to W&B online, offline or not at all, and why, decided once per process.

`logger.mode=auto` is online when W&B would find credentials the way `wandb login` leaves them, in
W&B's documented order: the WANDB_API_KEY (or WANDB_IDENTITY_TOKEN_FILE) environment variable, then
the .netrc entry for the server (`NETRC`, else ~/.netrc or ~/_netrc) that `wandb login` writes. The
server is WANDB_BASE_URL, else `base_url` in the user's W&B settings file (`wandb login --host`),
else W&B's default. Online also needs the server to answer: one TCP connection with a short timeout
is tried first, so a machine without network goes offline at once (with one line saying so) instead
of waiting out wandb.init's 90 s timeout run after run.
"""

from __future__ import annotations

import configparser
import netrc
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from harness.config import ConfigError, LoggerConfig

PROBE_TIMEOUT_S = 5.0
# WANDB_MODE values wandb itself accepts (wandb.Settings.mode); dryrun is offline's old name, run and
# shared are kinds of online
ENV_MODES = ("online", "offline", "dryrun", "disabled", "run", "shared")
_probed: dict[str, str | None] = {}  # server URL -> None (answers) or why not, once per process


@dataclass(frozen=True)
class Mode:
    """How W&B logs: `online`, `offline` or `disabled`, and why, in a few words."""

    mode: str
    why: str


def base_url() -> str:
    """The W&B server this process would talk to."""
    url = os.environ.get("WANDB_BASE_URL", "").strip()
    if url:
        return url.rstrip("/")
    config_dir = Path(os.environ.get("WANDB_CONFIG_DIR") or "~/.config/wandb").expanduser()
    settings = configparser.ConfigParser()
    try:
        settings.read(config_dir / "settings")
        url = settings.get("default", "base_url", fallback="").strip()
    except configparser.Error:
        url = ""
    if url:
        return url.rstrip("/")
    import wandb

    return str(wandb.Settings().base_url).rstrip("/")


def _netrc_path() -> Path:
    if os.environ.get("NETRC"):
        return Path(os.environ["NETRC"]).expanduser()
    home = Path("~/.netrc").expanduser()
    windows = Path("~/_netrc").expanduser()
    return windows if not home.exists() and windows.exists() else home


def credentials(url: str) -> str | None:
    """Where W&B would find an API key for the server at url (a short label), or None."""
    for var in ("WANDB_API_KEY", "WANDB_IDENTITY_TOKEN_FILE"):
        if os.environ.get(var):
            return var
    path = _netrc_path()
    try:
        entry = netrc.netrc(path).authenticators(urlparse(url).hostname or "")
    except (OSError, netrc.NetrcParseError):
        return None
    return f"{path} (wandb login)" if entry and entry[2] else None


def unreachable(url: str, timeout_s: float = PROBE_TIMEOUT_S) -> str | None:
    """None when the server at url accepts a TCP connection within timeout_s, else why not."""
    if url not in _probed:
        parsed = urlparse(url)
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        try:
            socket.create_connection((parsed.hostname or "", port), timeout=timeout_s).close()
            _probed[url] = None
        except OSError as exc:
            _probed[url] = f"{parsed.hostname}:{port} unreachable ({exc.strerror or type(exc).__name__})"
    return _probed[url]


def _env_mode() -> str:
    """WANDB_MODE, lower case ('' when unset); ConfigError for a value wandb does not know, which it
    would otherwise reject at each run's start (or, under `auto`, be taken for online)."""
    value = os.environ.get("WANDB_MODE", "").strip().lower()
    if value and value not in ENV_MODES:
        raise ConfigError(
            f"WANDB_MODE: unknown value {value!r} in the environment; allowed: {', '.join(ENV_MODES)} "
            "(or unset it)"
        )
    return value


def resolve_mode(cfg: LoggerConfig) -> Mode:
    """The mode the runs of this process log in. Under `auto`, a WANDB_MODE of offline or disabled in
    the environment wins; then credentials and a reachable server make it online. An explicit
    `online` without a reachable server also goes offline (the runs can be synced later). ConfigError
    for a WANDB_MODE that wandb does not know."""
    if cfg.backend == "off":
        return Mode("disabled", "logger=off")
    env = _env_mode()
    if cfg.mode == "offline":
        return Mode("offline", "logger.mode=offline")
    if cfg.mode == "auto":
        if env == "disabled":
            return Mode("disabled", "WANDB_MODE=disabled")
        if env in ("offline", "dryrun"):
            return Mode("offline", f"WANDB_MODE={env}")
    url = base_url()
    source = credentials(url)
    if source is None and cfg.mode == "auto":
        return Mode("offline", f"no W&B API key for {url}; `wandb login` to log online")
    problem = unreachable(url)
    if problem is not None:
        return Mode("offline", f"W&B server {problem}")
    return Mode("online", f"{url}, key from {source}" if source else url)


def sync_command(root: Path) -> str:
    """The shell command that uploads the offline runs under a W&B directory (`wandb_root`)."""
    return f"wandb sync {root / 'wandb'}/offline-run-*"
