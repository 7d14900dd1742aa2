"""Settings from ``MESSENGER_*`` environment variables (docs/configuration.md)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

Backend = Literal["embedded", "production"]


class Settings(BaseSettings):
    """Every knob of a messenger node; the defaults run the embedded single-node server.

    ``backend`` (``MESSENGER_BACKEND``) is the one choice of stores: ``embedded`` (SQLite in
    the data dir, one process) or ``production`` (Redis + Cassandra, any number of nodes).
    Left unset, it is ``production`` when the stores are configured; a configuration that
    mixes the two is refused at start with what to set.
    """

    model_config = SettingsConfigDict(env_prefix="MESSENGER_", extra="ignore")

    backend: Backend | None = None
    workers: int = Field(default=1, ge=1)
    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: Path = Path("messenger-data")
    redis_url: str | None = None
    cassandra_hosts: str | None = None
    cassandra_keyspace: str = "messenger"
    cassandra_replication: str = Field(
        default="SimpleStrategy:1",
        description="'SimpleStrategy:<rf>' or 'NetworkTopologyStrategy:dc1=3,dc2=3'",
    )
    jwt_secret: str | None = None
    token_ttl_s: int = 30 * 24 * 3600
    node_id: str | None = None
    heartbeat_interval_ms: int = 30_000
    ws_queue_size: int = 256
    max_request_bytes: int = 128 * 1024  # a 16 KiB body fully escaped (\u0001) is 96 KiB
    send_rate_per_s: float = Field(default=20.0, gt=0, allow_inf_nan=False)
    send_burst: int = Field(default=200, ge=1)
    typing_interval_s: float = Field(default=2.0, gt=0, allow_inf_nan=False)
    # Per-client limits (inbox.accounts.throttle): a bucket of ``burst`` that refills at
    # ``rate_per_s``.
    login_failures_per_user_burst: int = Field(default=10, ge=1)
    login_failures_per_user_rate_per_s: float = Field(default=1 / 60, gt=0, allow_inf_nan=False)
    login_failures_per_address_burst: int = Field(default=100, ge=1)
    login_failures_per_address_rate_per_s: float = Field(default=0.5, gt=0, allow_inf_nan=False)
    signups_per_address_burst: int = Field(default=300, ge=1)
    signups_per_address_rate_per_s: float = Field(default=1.0, gt=0, allow_inf_nan=False)
    upgrades_per_address_burst: int = Field(default=300, ge=1)
    upgrades_per_address_rate_per_s: float = Field(default=5.0, gt=0, allow_inf_nan=False)
    # This node's own capacity for new WebSockets, all clients together (gateway.admission).
    upgrades_per_node_burst: int = Field(default=400, ge=1)
    upgrades_per_node_rate_per_s: float = Field(default=200.0, gt=0, allow_inf_nan=False)
    drain_window_s: float = Field(
        default=10.0, ge=0, le=600, allow_inf_nan=False,
        description="on SIGTERM/SIGINT: how long the node drains (not ready, no new sockets, "
                    "REST still served) and the span its sockets' reconnects are spread over")
    forwarded_allow_ips: str = Field(
        default="127.0.0.1,::1",
        description="peers whose X-Forwarded-For/-Proto name the client: comma-separated IPs "
                    "or networks, '*' for any, '' for none (the client address limits count)",
    )
    fcm_credentials: Path | None = None
    fcm_endpoint: str | None = None
    apns_key_file: Path | None = None
    apns_key_id: str | None = None
    apns_team_id: str | None = None
    apns_topic: str | None = None
    apns_endpoint: str | None = None
    apns_ca_file: Path | None = None
    apns_sandbox: bool = False
    push_preview: bool = True
    push_workers: int = 1
    ack_window_s: float = Field(
        default=10.0, ge=0, allow_inf_nan=False,
        description="how long a live delivery may stay un-acked before the device gets a "
                    "push for it (0: live deliveries are final, never pushed)")
    # Attachments (docs/configuration.md#attachments): a directory of the data dir unless an
    # S3 bucket is named.
    attachments_dir: Path | None = Field(default=None, description="local storage; default "
                                         "<data dir>/attachments")
    attachments_max_bytes: int = Field(default=100 * 1024 * 1024, ge=1, le=5 * 1024**3)
    attachments_max_image_pixels: int = Field(default=50_000_000, ge=1, le=89_478_485)
    attachments_grace_s: float = Field(default=24 * 3600, ge=0, allow_inf_nan=False)
    attachments_gc_interval_s: float = Field(default=300, gt=0, allow_inf_nan=False)
    attachments_upload_expiry_s: int = Field(default=3600, ge=1, le=7 * 24 * 3600)
    attachments_link_expiry_s: int = Field(default=3600, ge=1, le=7 * 24 * 3600)
    attachments_s3_bucket: str | None = None
    attachments_s3_endpoint: str | None = None
    attachments_s3_public_endpoint: str | None = None
    attachments_s3_region: str = "us-east-1"
    attachments_s3_access_key_id: str | None = None
    attachments_s3_secret_access_key: str | None = None
    attachments_s3_path_style: bool = True

    @model_validator(mode="after")
    def _one_backend(self) -> Settings:
        """Settle ``backend`` and refuse settings that belong to the other one."""
        stores = {"MESSENGER_REDIS_URL": self.redis_url,
                  "MESSENGER_CASSANDRA_HOSTS": self.cassandra_hosts}
        backend = self.backend or ("production" if any(stores.values()) else "embedded")
        if backend == "production":
            missing = [name for name, value in stores.items() if not value]
            if missing:
                raise ValueError(f"the production backend needs {' and '.join(missing)} "
                                 "(set both, or neither for the embedded default)")
        else:
            stray = [name for name, value in stores.items() if value]
            if stray:
                raise ValueError(f"{' and '.join(stray)} set with MESSENGER_BACKEND=embedded: "
                                 "set MESSENGER_BACKEND=production, or unset them")
            if self.workers > 1:
                raise ValueError("MESSENGER_WORKERS (--workers) above 1 needs the production "
                                 "backend: the embedded store belongs to one process")
        self.backend = backend
        return self

    def cassandra_host_list(self) -> list[str]:
        """Contact points from ``MESSENGER_CASSANDRA_HOSTS`` (``host`` or ``host:port``)."""
        return [h.strip() for h in (self.cassandra_hosts or "").split(",") if h.strip()]

    def replication(self) -> dict[str, str | int]:
        """The keyspace replication map from ``cassandra_replication``.

        ``SimpleStrategy:1`` -> ``{class: SimpleStrategy, replication_factor: 1}``;
        ``NetworkTopologyStrategy:dc1=3,dc2=3`` -> ``{class: ..., dc1: 3, dc2: 3}``.
        """
        strategy, _, options = self.cassandra_replication.partition(":")
        if strategy == "SimpleStrategy":
            return {"class": strategy, "replication_factor": int(options or "1")}
        if strategy == "NetworkTopologyStrategy" and options:
            pairs = (item.split("=", 1) for item in options.split(","))
            return {"class": strategy, **{dc.strip(): int(rf) for dc, rf in pairs}}
        raise ValueError(f"MESSENGER_CASSANDRA_REPLICATION not understood: "
                         f"{self.cassandra_replication!r}")

    @property
    def node_name(self) -> str:
        """This process's name on the live bus: ``MESSENGER_NODE_ID`` (else ``host:port``),
        with the process id when several workers share it (each worker is a node)."""
        base = self.node_id or f"{self.host}:{self.port}"
        return f"{base}-{os.getpid()}" if self.workers > 1 else base

    def attachments_root(self) -> Path:
        """The local attachment directory (blobs, and every node's upload spool)."""
        return self.attachments_dir or self.data_dir / "attachments"

    def jwt_secret_path(self) -> Path:
        """Where the embedded default keeps the secret it generated."""
        return self.data_dir / "jwt-secret"

    def jwt_secret_origin(self) -> str:
        """Where ``resolve_jwt_secret`` takes the secret from, for the start-up log (never
        the secret itself)."""
        if self.jwt_secret:
            return "MESSENGER_JWT_SECRET"
        return f"{self.jwt_secret_path()} (generated on first start, kept)"

    def summary(self) -> str:
        """One line for the start-up log: mode, where the data is, URL and the secret's
        origin. Passwords in the Redis URL are masked."""
        if self.backend == "production":
            where = (f"stores redis={_mask_password(self.redis_url or '')} "
                     f"cassandra={self.cassandra_hosts} keyspace={self.cassandra_keyspace}")
        else:
            where = f"data dir {self.data_dir.resolve()}"
        return (f"Inbox Messenger: {self.backend} mode, {where}, "
                f"listening on http://{self.host}:{self.port}, "
                f"JWT secret from {self.jwt_secret_origin()}")

    def resolve_jwt_secret(self) -> str:
        """The configured secret; the embedded default generates one into its data dir.

        Outside the embedded default a configured secret of at least 32 characters is required,
        since nodes must share it and a guessable one would let anyone mint tokens.
        """
        if self.jwt_secret:
            if len(self.jwt_secret) < 32:
                raise ValueError("MESSENGER_JWT_SECRET must be at least 32 characters")
            return self.jwt_secret
        if self.backend == "production":
            raise ValueError("MESSENGER_JWT_SECRET is required by the production backend")
        path = self.jwt_secret_path()
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_urlsafe(48))
            path.chmod(0o600)
        return path.read_text().strip()


def _mask_password(url: str) -> str:
    """``url`` with the password of its user info replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))
