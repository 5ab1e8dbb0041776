"""Who can get into the Ray instance a sweep uses: token authentication, set explicitly.

A local Ray instance listens on all network interfaces (GCS, raylet, worker gRPC ports), and
whoever reaches them can run code as the sweep's user. Ray 2.60 requires a token by default,
but writes it to `~/.ray/auth_token` with mode 0644, readable by every local user wherever home
directories are world-readable. So an instance that prunebench starts gets its settings from
prunebench: `RAY_AUTH_MODE=token` (whatever the user's environment says) and a fresh 256-bit
token in a file of mode 0600 inside a private temporary directory, named by
`RAY_AUTH_TOKEN_PATH`. Ray's processes inherit these variables from the driver; the file is
removed when the executor closes. `--address` joins an existing cluster with the user's own
settings (`RAY_AUTH_TOKEN`, `RAY_AUTH_TOKEN_PATH` or `~/.ray/auth_token`), in token mode when a
token is available and no mode is set.

Ray caches its configuration and token in C++: after the variables change, `Config.initialize`
and the token loader's `reset_cache` make this process see them (as `ray.init` itself does).
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from prunebench.errors import PrunebenchError

AUTH_VARIABLES = ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")


@dataclass
class RayAuth:
    """The authentication variables as they were before, and what to remove afterwards."""

    saved: dict[str, str | None] = field(default_factory=dict)
    token_dir: Path | None = None

    @property
    def token_file(self) -> Path | None:
        return self.token_dir / "auth_token" if self.token_dir else None

    def restore(self) -> None:
        """Put the user's variables back and delete the private token (idempotent)."""
        for name, value in self.saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self.saved = {}
        if self.token_dir is not None:
            shutil.rmtree(self.token_dir, ignore_errors=True)
            self.token_dir = None
        reload_ray_settings()


def reload_ray_settings() -> None:
    """Make this process's Ray see the current variables (its config and token are cached)."""
    from ray._raylet import AuthenticationTokenLoader, Config

    Config.initialize("")
    AuthenticationTokenLoader.instance().reset_cache()


def write_private_token(directory: Path) -> Path:
    """A fresh token in `directory`/auth_token, created with mode 0600 (never readable by
    others, not even for an instant)."""
    path = directory / "auth_token"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_hex(32))
    return path


def private_instance(warn: Callable[[str], None]) -> RayAuth:
    """Settings for a local instance that prunebench starts: token mode, a private token."""
    auth = RayAuth(saved={name: os.environ.get(name) for name in AUTH_VARIABLES})
    if (os.environ.get("RAY_AUTH_MODE") or "token").lower() != "token":
        warn(
            f"RAY_AUTH_MODE={os.environ['RAY_AUTH_MODE']} is ignored: the local Ray instance "
            "that prunebench starts always requires its private token"
        )
    auth.token_dir = Path(tempfile.mkdtemp(prefix="prunebench-ray-"))  # mode 0700
    os.environ["RAY_AUTH_MODE"] = "token"
    os.environ["RAY_AUTH_TOKEN_PATH"] = str(write_private_token(auth.token_dir))
    os.environ.pop("RAY_AUTH_TOKEN", None)  # it would take precedence over the file
    reload_ray_settings()
    return auth


def user_has_token() -> bool:
    """Whether the user holds a Ray token (Ray's own three places to look)."""
    return bool(
        os.environ.get("RAY_AUTH_TOKEN")
        or os.environ.get("RAY_AUTH_TOKEN_PATH")
        or (Path.home() / ".ray" / "auth_token").exists()
    )


def cluster_requires_token(address: str) -> bool | None:
    """Ask the cluster's GCS for its id without a token: refused means it requires tokens.
    None when that cannot be told (a `ray://` or `auto` address, or no answer)."""
    if "://" in address or ":" not in address:
        return None
    import grpc
    from ray.core.generated import gcs_service_pb2, gcs_service_pb2_grpc

    with grpc.insecure_channel(address) as channel:
        stub = gcs_service_pb2_grpc.NodeInfoGcsServiceStub(channel)
        try:
            stub.GetClusterId(gcs_service_pb2.GetClusterIdRequest(), timeout=5)
        except grpc.RpcError as exc:
            return True if exc.code() == grpc.StatusCode.UNAUTHENTICATED else None
    return False


def existing_cluster(address: str, warn: Callable[[str], None]) -> RayAuth:
    """Settings for `--address`: the user's token variables, and the mode the cluster uses (a
    client must match it: Ray enables token mode by itself only for a local instance it finds,
    and a token-mode driver cannot serve the workers of a cluster without tokens)."""
    required = cluster_requires_token(address)
    if required and not user_has_token():
        raise PrunebenchError(
            f"the Ray cluster at {address} requires its token: set RAY_AUTH_TOKEN_PATH to a "
            "file that holds it (mode 0600), or RAY_AUTH_TOKEN"
        )
    auth = RayAuth(saved={"RAY_AUTH_MODE": os.environ.get("RAY_AUTH_MODE")})
    if required is False:
        warn(
            f"the Ray cluster at {address} has token authentication off: anyone who reaches "
            "its ports can run code on it; restart it with RAY_AUTH_MODE=token"
        )
        os.environ["RAY_AUTH_MODE"] = "disabled"
    elif required or (os.environ.get("RAY_AUTH_MODE") is None and user_has_token()):
        os.environ["RAY_AUTH_MODE"] = "token"
    reload_ray_settings()
    return auth
