"""Settings, read from the environment with the prefix ``STAGING_``.

The variable names are a public contract (README, Helm chart): rename nothing without a migration note.
"""

from __future__ import annotations

from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

ALL_METHODS: tuple[str, ...] = ("local_copy", "symlink_copy", "direct_download", "jupyter_copy")
DEFAULT_STORAGE_ROOT = Path("./var/storage")

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]


def _split_commas(value: object) -> object:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


class Settings(BaseSettings):
    """Every knob of the service. Defaults give a working embedded service under ``./var/``."""

    model_config = SettingsConfigDict(env_prefix="STAGING_", extra="ignore")

    database_url: str = Field(
        "sqlite:///./var/staging.db",
        description="SQLAlchemy URL of the job database, e.g. mysql+pymysql://user:pw@host:3306/staging.",
    )
    storage_roots: Annotated[list[Path], NoDecode] = Field(
        default_factory=lambda: [DEFAULT_STORAGE_ROOT],
        description="Comma-separated folders of the mounted archive storage; sources must lie inside one.",
    )
    user_areas: str = Field(
        "./var/users/{username}",
        description="Template of a user's area; {username} is replaced by the validated user name.",
    )
    methods: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: list(ALL_METHODS),
        description="Comma-separated staging methods enabled at this site.",
    )
    log_file: Path = Field(Path("staging_service.log"), description="Log file (rotated by size).")
    log_level: LogLevel = Field("INFO", description="DEBUG, INFO, WARNING or ERROR.")
    log_max_bytes: int = Field(10 * 1024 * 1024, ge=1024, description="Rotate the log file at this size.")
    log_backup_count: int = Field(5, ge=0, description="Rotated log files kept.")

    embedded_worker: bool = Field(True, description="Run transfers on a worker pool inside the API process.")
    worker_threads: int = Field(4, ge=1, le=256, description="Transfers run at once by one worker.")
    lease_seconds: float = Field(
        60.0, gt=0, description="A running job whose heartbeat is older than this is given back to the queue."
    )
    max_attempts: int = Field(
        3, ge=1, description="Attempts of a job (transient failures, dead workers) before it ends failed."
    )
    retry_backoff_seconds: float = Field(
        2.0, ge=0, description="Delay before the 2nd attempt of a job after a transient failure; doubles after."
    )
    retry_backoff_max_seconds: float = Field(300.0, ge=0, description="Longest delay between two attempts.")
    max_running_per_user: int = Field(
        8, ge=0, description="Jobs of one user running at once across all workers; 0 means no limit."
    )
    batch_jobs: int = Field(
        64,
        ge=1,
        le=1000,
        description="One-file jobs of a request (hard links, copies of files up to 1 MiB) that a worker thread "
        "claims and stages together, flushing and recording them once; 1: one at a time.",
    )
    max_items_per_request: int = Field(10000, ge=1, description="Items accepted in one POST /api/v1/jobs.")
    shutdown_grace_seconds: float = Field(
        30.0, ge=0, description="On SIGTERM, how long running jobs may finish before they are handed back."
    )
    poll_seconds: float = Field(
        0.5, gt=0, description="How often an idle process looks for queued jobs and for ended ones it waits for."
    )
    sync_timeout_seconds: float = Field(
        3600.0, gt=0, description="How long POST /stage_data waits for its job before answering 202."
    )

    verify_copies: bool = Field(True, description="Compare the checksum of every copy with its source.")
    fsync: bool = Field(
        True,
        description="Flush each staged file and the folders that name it to disk before reporting success; "
        "false only where a site accepts losing recent results in a power cut.",
    )
    # 2 MiB: the verifier reads a chunk back while it is still in the CPU's cache (8 MiB: 1.24x cp, 2 MiB: 1.06x)
    copy_chunk_bytes: int = Field(2 * 1024 * 1024, ge=64 * 1024, description="Unit of copy and progress.")
    startup_wait_seconds: float = Field(
        300.0,
        gt=0,
        description="How long worker and migrate wait at start for the database (and its schema); "
        "serve listens at once and stays unready (503) until the database is ready.",
    )
    max_bytes_per_second: int = Field(0, ge=0, description="Per-transfer bandwidth cap; 0 means none.")
    hardlink_writable_source: Literal["refuse", "allow"] = Field(
        "refuse",
        description="symlink_copy of a source the staged result's owner could write (u+w as its owner, g+w of "
        "one of its groups, o+w): refuse (409 source_writable) or allow.",
    )

    jupyterhub_url: str | None = Field(
        None, description="Public URL of JupyterHub (e.g. https://hub.example.org); unset disables jupyter_copy."
    )
    jupyterhub_api_token: SecretStr | None = Field(
        None,
        description="JupyterHub service token with scopes read:users, read:servers, servers, access:servers "
        "(and admin:users with STAGING_JUPYTER_CREATE_USERS).",
    )
    jupyterhub_token_auth: bool = Field(
        False,
        description="Also sign in callers by a JupyterHub token (a single-user server's JUPYTERHUB_API_TOKEN or a "
        "user's API token), checked against STAGING_JUPYTERHUB_URL; works beside header or oidc.",
    )
    jupyterhub_token_scope: str = Field(
        "access:services!service=staging",
        description="Scope a JupyterHub token must carry to sign in here (empty: any token of the user).",
    )
    jupyterhub_token_cache_seconds: float = Field(
        30.0, ge=0, description="How long the hub's answer about a token is reused (a revoked token works as long)."
    )
    jupyter_workdir: str = Field("", description="Folder inside the user's Jupyter server that receives data.")
    jupyter_spawn_timeout_seconds: float = Field(
        120.0, gt=0, description="How long to wait for a stopped Jupyter server to start."
    )
    jupyter_request_timeout_seconds: float = Field(
        60.0, gt=0, description="Timeout of one request to JupyterHub or a Jupyter server."
    )
    jupyter_chunk_bytes: int = Field(
        512 * 1024,
        ge=4096,
        le=256 * 1024 * 1024,
        description="Bytes per upload request (base64 adds a third: 512 KiB fits a 1 MiB ingress limit).",
    )
    jupyter_create_users: bool = Field(False, description="Create users unknown to JupyterHub instead of failing.")
    jupyter_home_mounts: str | None = Field(
        None,
        description="Template ({username}) of where each user's Jupyter root is mounted in this service; "
        "when set, staged files are made read-only there.",
    )
    jupyter_write_mounted_homes: bool = Field(
        False,
        description="jupyter_copy writes into the mounted Jupyter homes (STAGING_JUPYTER_HOME_MOUNTS) with the "
        "local copy engine, at disk speed, instead of uploading through the Contents API.",
    )

    auth_mode: Literal["none", "header", "oidc"] = Field(
        "none", description="none (development: the username parameter is trusted), header or oidc."
    )
    oidc_issuer: str | None = Field(None, description="OIDC issuer URL (e.g. the SKA IAM); discovery is read from it.")
    oidc_audience: str | None = Field(None, description="The audience tokens must carry for this service.")
    oidc_username_claim: str = Field("preferred_username", description="Claim that holds the user name.")
    oidc_groups_claim: str = Field("groups", description="Claim that holds the user's groups.")
    oidc_leeway_seconds: float = Field(30.0, ge=0, description="Clock skew tolerated on token times.")
    oidc_jwks_cache_seconds: float = Field(300.0, gt=0, description="How long the issuer's keys are cached.")
    oidc_jwks_refresh_cooldown_seconds: float = Field(
        10.0, ge=0, description="Least time between two key refreshes caused by unknown key ids."
    )
    auth_user_header: str = Field("X-Forwarded-User", description="header mode: the header with the user name.")
    auth_groups_header: str = Field("X-Forwarded-Groups", description="header mode: comma-separated groups.")
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["127.0.0.1/32", "::1/128"],
        description="header mode: addresses (CIDR) of the proxies whose user header is believed.",
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Comma-separated origins allowed by CORS; empty: CORS off."
    )
    max_body_bytes: int = Field(8 * 1024 * 1024, ge=1024, description="Largest request body accepted (413).")
    max_active_jobs_per_user: int = Field(
        0, ge=0, description="Queued and running jobs one user may have at once (429); 0 means no limit."
    )
    quota_bytes_per_day: int = Field(
        0, ge=0, description="Bytes one user may stage in 24 hours (413 quota_exceeded); 0 means no quota."
    )
    default_lifetime: timedelta = Field(
        timedelta(days=14),
        description="How long staged data is kept when a request names no lifetime (ISO 8601 duration, "
        "e.g. P14D, or seconds); 0: until released.",
    )
    max_lifetime: timedelta = Field(
        timedelta(days=90), description="The longest lifetime a request may ask for (ISO 8601 duration or seconds)."
    )
    allow_unlimited_lifetime: bool = Field(
        False, description="Let every user ask for lifetime 0 (kept until released); otherwise only admins."
    )
    reaper_interval_seconds: float = Field(
        60.0, gt=0, description="How often the reaper (one process at a time) removes expired staged data."
    )
    quota_held_bytes_per_user: int = Field(
        0,
        ge=0,
        description="Bytes of staged data one user may hold at once (413 quota_exceeded; hard links count "
        "zero); 0 means no quota.",
    )
    smtp_host: str | None = Field(None, description="The site's SMTP relay for notification e-mails; unset: no e-mail.")
    smtp_port: int = Field(25, ge=1, le=65535, description="Port of the SMTP relay.")
    smtp_from: str = Field("skao-staging@localhost", description="Sender address of notification e-mails.")
    smtp_username: str | None = Field(None, description="SMTP login, when the relay asks for one.")
    smtp_password: SecretStr | None = Field(None, description="SMTP password, when the relay asks for one.")
    smtp_starttls: bool = Field(False, description="Upgrade the SMTP connection with STARTTLS before logging in.")
    auth_email_header: str = Field(
        "X-Forwarded-Email", description="header mode: the header with the user's e-mail address."
    )
    oidc_email_claim: str = Field("email", description="Claim that holds the user's e-mail address.")
    webhook_url: str | None = Field(
        None, description="URL that receives every notification as signed JSON (operators'; never per request)."
    )
    webhook_secret: SecretStr | None = Field(
        None, description="Key of the HMAC-SHA256 signature of webhook bodies (X-Staging-Signature: sha256=<hex>)."
    )
    notify_interval_seconds: float = Field(
        30.0, gt=0, description="How often ended requests and expiring data are looked for and notices sent."
    )
    notify_max_attempts: int = Field(
        8, ge=1, description="Deliveries of one notice tried (with a doubling pause) before it is given up."
    )
    group_storage_roots: dict[str, list[Path]] = Field(
        default_factory=dict,
        description='JSON {"group": ["/storage/root", ...]}: roots named here are readable only by members '
        "of the groups mapped to them (admins read all); roots not named stay open to every user.",
    )
    owner_uid: int | None = Field(None, ge=0, description="uid given to staged files and folders (fixed).")
    owner_gid: int | None = Field(None, ge=0, description="gid given to staged files and folders (fixed).")
    oidc_uid_claim: str | None = Field(None, description="Token claim with the user's uid (overrides owner_uid).")
    oidc_gid_claim: str | None = Field(None, description="Token claim with the user's gid (overrides owner_gid).")
    enable_file_tool: bool = Field(
        False, description="Offer POST /api/v1/files (admins) to create test files in storage."
    )
    file_tool_max_bytes: int = Field(100 * 1024 * 1024, ge=0, description="Largest file the file tool creates.")
    admin_group: str = Field("staging-admins", description="Members act for other users and see every job.")

    rucio_url: str | None = Field(None, description="Rucio server URL; unset: DIDs are not accepted.")
    rucio_auth_url: str | None = Field(None, description="Rucio authentication server URL (default: rucio_url).")
    rucio_account: str | None = Field(None, description="The Rucio account the service reads the catalogue as.")
    rucio_username: str | None = Field(None, description="userpass credentials of that account.")
    rucio_password: SecretStr | None = Field(None, description="userpass credentials of that account.")
    rucio_token_file: Path | None = Field(
        None,
        description="A file holding a token of that account, kept fresh by the site (read again when it "
        "changes); instead of userpass.",
    )
    rucio_rse: str | None = Field(None, description="The site's RSE, or an RSE expression, whose replicas are read.")
    rucio_rse_mounts: dict[str, Path] = Field(
        default_factory=dict,
        description='JSON {"<PFN prefix>": "<local mount point>"}: where the RSE\'s files are mounted here '
        "(each mapped path must lie inside a storage root).",
    )
    rucio_timeout_seconds: float = Field(30.0, gt=0, description="Timeout of one request to Rucio.")
    rucio_parallel_requests: int = Field(
        4, ge=1, le=32, description="Requests to Rucio at once when reading a dataset's replicas (in batches)."
    )
    rucio_replication_lifetime_seconds: int = Field(
        7 * 24 * 3600, ge=0, description="Lifetime of the replication rules the service creates (0: none)."
    )
    rucio_replication_timeout_seconds: float = Field(
        24 * 3600.0, gt=0, description="A job waiting for its replica longer than this fails (replication_timeout)."
    )
    rucio_replication_poll_seconds: float = Field(
        30.0, gt=0, description="How often each process looks whether waiting jobs' replicas arrived."
    )
    rucio_verify_links: bool = Field(
        False,
        description="symlink_copy of a DID also reads the file to check its adler32 against the catalogue "
        "(the size is always checked).",
    )
    group_rucio_scopes: dict[str, list[str]] = Field(
        default_factory=dict,
        description='JSON {"group": ["scope", ...]}: scopes named here are staged only by members of the groups '
        "mapped to them (admins stage all); scopes not named are open to every user the service's account serves.",
    )

    @field_validator("storage_roots", "methods", "trusted_proxies", "cors_origins", mode="before")
    @classmethod
    def _comma_list(cls, value: object) -> object:
        return _split_commas(value)

    @field_validator("default_lifetime", "max_lifetime")
    @classmethod
    def _not_negative(cls, value: timedelta) -> timedelta:
        if value < timedelta(0):
            raise ValueError("a lifetime is not negative")
        return value

    @field_validator("storage_roots")
    @classmethod
    def _roots_not_empty(cls, value: list[Path]) -> list[Path]:
        if not value:
            raise ValueError("at least one storage root is needed")
        return value

    @field_validator("jupyter_workdir")
    @classmethod
    def _workdir_is_relative(cls, value: str) -> str:
        parts = [part for part in value.split("/") if part not in ("", ".")]
        if ".." in parts:
            raise ValueError("the Jupyter working directory must not contain '..'")
        return "/".join(parts)

    @field_validator("jupyter_home_mounts")
    @classmethod
    def _mount_has_username(cls, value: str | None) -> str | None:
        if value is not None and "{username}" not in value:
            raise ValueError("the Jupyter home mount template must contain {username}")
        return value

    @field_validator("user_areas")
    @classmethod
    def _template_has_username(cls, value: str) -> str:
        if "{username}" not in value:
            raise ValueError("the user-area template must contain {username}")
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @property
    def uses_demo_storage(self) -> bool:
        """True when no storage root was configured: ``serve`` then fills a demo dataset."""
        return "storage_roots" not in self.model_fields_set

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
