"""One settings object for the whole system, read from ``FASTLIMS_*`` environment variables.

Only :mod:`fastlims.bootstrap` decides which adapter runs from these values; everything else
receives what it needs as arguments.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Runtime configuration. Every field maps to ``FASTLIMS_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="FASTLIMS_", extra="ignore")

    data_dir: Path = Field(default=Path("./fastlims-data"), description="Where embedded services keep state")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default: SQLite file fastlims.db in the data dir"
    )
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8000, ge=1, le=65535)
    timezone: str = Field(default="UTC", description="The lab's IANA time zone for showing and entering times")
    secret_key: SecretStr | None = Field(
        default=None, description="Signs session cookies; default: a random key kept in the data dir"
    )
    session_max_age_s: int = Field(default=8 * 3600, ge=60)
    secure_cookies: bool = Field(default=False, description="Set when served over HTTPS")
    log_level: str = "INFO"
    log_format: str = Field(default="json", pattern="^(json|text)$")

    # --- messaging
    mqtt_url: str | None = Field(
        default=None,
        description="External broker (mqtt://host:1883 or mqtts://host:8883); unset: the embedded broker",
    )
    mqtt_host: str = Field(default="127.0.0.1", description="Where the embedded broker listens")
    mqtt_port: int = Field(default=1883, ge=1, le=65535)
    mqtt_username: str | None = Field(default=None, description="The LIMS's identity on an external broker")
    mqtt_password: SecretStr | None = None
    mqtt_ca_file: Path | None = Field(default=None, description="CA bundle for mqtts://")
    mqtt_cert_file: Path | None = Field(default=None, description="Client certificate for mqtts://")
    mqtt_key_file: Path | None = Field(default=None, description="Client key for mqtts://")
    mqtt_topic_prefix: str = "fastest/v1"
    mqtt_client_id: str | None = Field(
        default=None,
        description="Suffix of the LIMS's client id (USERNAME/SUFFIX); default: derived from the secret key, "
        "stable (the broker keeps our session) and unguessable",
    )
    dt_ack_timeout_s: float = Field(default=120.0, gt=0, description="Wait this long for the DT's ack")
    dt_request_retries: int = Field(default=3, ge=0, description="Re-send a request this often before failing")
    outbox_poll_s: float = Field(default=1.0, gt=0, description="Relay's fallback poll when nothing wakes it")
    mqtt_reconnect_max_s: int = Field(default=10, ge=1, description="Longest wait between reconnection attempts")
    mqtt_max_packet_bytes: int = Field(
        default=16 * 1024 * 1024, ge=1024, le=268_435_455, description="Largest MQTT packet the broker takes"
    )
    mqtt_connect_timeout_s: float = Field(default=10.0, gt=0, description="Drop a socket that sends no CONNECT")
    mqtt_auth_max_failures: int = Field(
        default=10, ge=1, description="Wrong MQTT passwords per account or address before a lockout"
    )
    mqtt_auth_lock_s: float = Field(default=900.0, gt=0, description="How long an MQTT lockout lasts")
    mqtt_revocation_poll_s: float = Field(
        default=1.0, gt=0, description="How soon a disabled MQTT identity is disconnected"
    )

    # --- intake: blob storage, SFTP for Digital Twin partners, upload events (fastlims.intake)
    storage_url: str | None = Field(
        default=None,
        description="A folder, file://…, az://container/prefix, https://ACCOUNT.blob.core.windows.net/"
        "container/prefix or s3://bucket/prefix; default: the folder 'storage' in the data dir",
    )
    storage_azure_account: str | None = Field(default=None, description="Azure storage account name")
    storage_azure_key: SecretStr | None = Field(default=None, description="Azure account key")
    storage_azure_sas: SecretStr | None = Field(default=None, description="Azure SAS token (instead of a key)")
    storage_endpoint: str | None = Field(default=None, description="Azure/S3 endpoint (Azurite, MinIO)")
    storage_allow_http: bool = Field(default=False, description="Allow http:// endpoints (emulators only)")
    sftp_enabled: bool = Field(default=True, description="Run the SFTP server for DT partners in `fastlims up`")
    sftp_host: str = "127.0.0.1"
    sftp_port: int = Field(default=2222, ge=0, le=65535, description="0: any free port")
    intake_max_file_bytes: int = Field(default=2 * 1024**3, ge=1, description="Largest uploaded file")
    intake_partner_quota_bytes: int = Field(
        default=10 * 1024**3, ge=1, description="A partner's pool space unless set per partner"
    )
    intake_watch_pool: bool = Field(default=True, description="Watch a local pool folder for dropped files")
    intake_watch_settle_s: float = Field(
        default=1.0, gt=0, description="A dropped file is complete when unchanged this long"
    )
    intake_max_zip_entries: int = Field(default=10_000, ge=1)
    intake_max_unpacked_bytes: int = Field(default=4 * 1024**3, ge=1)
    intake_max_compression_ratio: float = Field(default=200.0, gt=1)
    intake_set_timeout_s: float = Field(
        default=900.0, gt=0, description="Validate a set still missing an FMU its interconnection names after this"
    )
    eventgrid_key: SecretStr | None = Field(
        default=None, description="Shared key of the Event Grid webhook; unset: the webhook is off"
    )

    # --- pipeline: the durable workflow validate → DoE → schedule → dispatch (fastlims.pipeline)
    pipeline_enabled: bool = Field(default=True, description="Run pipeline workflows in `fastlims up` too")
    pipeline_system_database_url: str | None = Field(
        default=None,
        description="DBOS system database; default: beside the application's (SQLite: <db>.dbos.sqlite next to"
        " the database file; PostgreSQL: database <db>_dbos on the same server, created if missing)",
    )
    pipeline_executor_id: str | None = Field(
        default=None, description="Stable id of this process for recovery; default: host name + hash of the data dir"
    )
    pipeline_application_version: str | None = Field(
        default=None, description="Pinned workflow version; default: package version + workflow schema tag"
    )
    pipeline_worker_concurrency: int = Field(default=4, ge=1, description="Pipeline workflows one process runs at once")
    pipeline_queue_poll_s: float = Field(default=0.1, gt=0, description="How often a process looks for queued work")
    pipeline_heartbeat_s: float = Field(default=5.0, gt=0, description="Executor heartbeat and orphan sweep period")
    pipeline_executor_timeout_s: float = Field(
        default=30.0, gt=0, description="A process silent this long is gone: its workflows resume elsewhere"
    )
    pipeline_step_attempts: int = Field(default=5, ge=1, description="Attempts per round on a transient error")
    pipeline_retry_interval_s: float = Field(default=1.0, gt=0, description="First wait between attempts (doubles)")
    pipeline_retry_pause_s: float = Field(default=60.0, gt=0, description="Durable pause between rounds of attempts")
    pipeline_give_up_s: float = Field(
        default=3600.0, gt=0, description="Fail the request when a step's transient errors last this long"
    )
    pipeline_solver: str = Field(
        default="cpsat", pattern="^(cpsat|greedy|gurobi)$", description="Solver used when greedy is not good enough"
    )
    pipeline_solver_time_limit_s: float = Field(default=2.0, gt=0)
    pipeline_solver_gap: float = Field(
        default=0.01, ge=0, le=1, description="Keep the greedy schedule when it is provably within this gap"
    )
    pipeline_virtual_benches: int = Field(
        default=4, ge=0, description="Virtual benches virtual-1..N when the bench registry lists no virtual bench"
    )
    pipeline_default_doe: str = Field(
        default="nominal",
        pattern="^(nominal|latin_hypercube)$",
        description="Design for a test whose catalog entry has no DoE section",
    )
    pipeline_default_doe_runs: int = Field(default=20, ge=2, le=10_000, description="Runs of that Latin hypercube")
    pipeline_procedure_doe: str = Field(
        default="full_factorial",
        pattern="^(nominal|full_factorial)$",
        description="Design over a procedure's variables when the test name has no DoE section: two levels "
        "of each (full_factorial) or its default values only (nominal)",
    )
    pipeline_test_pause: str | None = Field(
        default=None, description="Tests only: step:phase points where steps block (fastlims.pipeline.pause)"
    )
    pipeline_test_pause_dir: Path | None = Field(default=None, description="Tests only: pause markers and releases")
    # --- virtual bench
    virtual_bench_enabled: bool = Field(
        default=True, description="Run virtual bench runs (the bench-<name> queues) wherever pipeline workflows run"
    )
    virtual_bench_concurrency: int | None = Field(
        default=None, ge=1, description="Simulations one process runs at once (default: the number of cores)"
    )
    virtual_bench_step_s: float | None = Field(
        default=None, gt=0, description="Communication step (default: the FMUs' own, else 1 s)"
    )
    virtual_bench_max_duration_s: float | None = Field(
        default=30 * 86400.0, gt=0, description="Absolute cap on a run's simulated duration (default 30 days)"
    )
    virtual_bench_timeout_s: float = Field(default=3600.0, gt=0, description="Wall-time limit of one run")
    virtual_bench_speed: float = Field(
        default=1000.0,
        gt=0,
        description="Simulated seconds per wall-clock second assumed for an FMU set that has not run yet "
        "(after its first runs, the measured speed books its virtual benches)",
    )
    virtual_bench_booking_factor: float = Field(
        default=3.0, ge=1, description="Safety factor on a virtual run's expected compute time when it is booked"
    )
    virtual_bench_booking_floor_s: float = Field(
        default=60.0, gt=0, description="Shortest booking of a virtual run (loading the FMUs, writing results)"
    )
    virtual_bench_batch_sim_s: float | None = Field(
        default=None,
        gt=0,
        description="Publish a metrics batch every this many simulated seconds (default: by wall-clock time)",
    )
    virtual_bench_batch_wall_s: float = Field(
        default=0.5,
        gt=0,
        description="Otherwise every this many wall-clock seconds, at most 10,000 samples a batch",
    )
    virtual_bench_metrics_qos: int = Field(default=1, ge=0, le=1, description="QoS of live metrics batches")
    virtual_bench_progress_s: float = Field(
        default=1.0, gt=0, description="How often progress is published and the request is polled for a cancel"
    )
    virtual_bench_max_duration_factor: float = Field(
        default=3.0,
        ge=1,
        description="A run may simulate this many times its procedure's expected duration (from the catalog) "
        "before it fails with end_cause timeout; FASTLIMS_VIRTUAL_BENCH_MAX_DURATION_S caps it absolutely",
    )
    # --- physical benches (fastlims.benches.gateway)
    bench_command_timeout_s: float = Field(
        default=10.0, gt=0, description="How long the LIMS waits for a bench's reply to a command before it resends it"
    )
    bench_command_retries: int = Field(
        default=2, ge=0, description="How often an unanswered command is resent (same command_id) before the run moves"
    )
    bench_offline_grace_s: float = Field(
        default=300.0, gt=0, description="How long a resumable run waits for its bench to come back online"
    )
    bench_max_duration_factor: float = Field(
        default=3.0, ge=1, description="A physical run is aborted past this many times its expected duration"
    )
    # --- hybrid runs (fastlims.runs.twins): the Digital Twin's prediction beside the measurement
    twin_runs: bool = Field(
        default=True,
        description="A physical run of a request with Digital Twin models gets a twin run on a virtual bench",
    )
    twin_residual_alert_v: float = Field(
        default=0.05,
        ge=0,
        description="A hybrid run whose RMS voltage error (measured − predicted) exceeds this many volts raises "
        "an alert on its request: the model no longer matches the real cell",
    )
    # --- the simulation sandbox (fastlims.benches.sandbox): partner FMUs are native code
    virtual_bench_sandbox: str = Field(
        default="auto",
        pattern="^(auto|namespaces|landlock|none)$",
        description="How simulation children are confined: auto (the strongest that works here), namespaces, "
        "landlock, or none (needs FASTLIMS_VIRTUAL_BENCH_UNSANDBOXED=true)",
    )
    virtual_bench_unsandboxed: bool = Field(
        default=False, description="Run virtual benches even where no sandbox can be set up (partner FMUs unconfined)"
    )
    virtual_bench_memory_mb: int = Field(default=4096, ge=256, description="Address-space limit of a simulation")
    virtual_bench_cpu_s: int | None = Field(
        default=None, ge=1, description="CPU-time limit of a simulation (default: its wall-time limit plus a minute)"
    )
    virtual_bench_file_size_mb: int = Field(default=1024, ge=1, description="Largest file a simulation may write")
    virtual_bench_processes: int = Field(
        default=64, ge=4, description="Processes and threads a simulation may have (its own user namespace)"
    )
    virtual_bench_open_files: int = Field(default=256, ge=32, description="Open files of a simulation")
    virtual_bench_sandbox_uid: int = Field(
        default=65534, ge=1, description="Who a simulation runs as when the LIMS runs as root (default: nobody)"
    )

    # --- accounts, sessions and limits on input (docs/security.md)
    session_absolute_s: int = Field(
        default=24 * 3600, ge=60, description="A page session ends this long after its login, however active"
    )
    login_max_failures: int = Field(default=10, ge=1, description="Failed logins of one account before it locks")
    login_max_failures_per_address: int = Field(
        default=30, ge=1, description="Failed logins from one source address before it locks"
    )
    login_lockout_s: float = Field(
        default=900.0, gt=0, description="How long a lock lasts (and the window failures are counted in)"
    )
    http_max_body_bytes: int = Field(
        default=10 * 1024**2, ge=1024, description="Largest request body except model uploads (413 above)"
    )
    eventgrid_max_body_bytes: int = Field(
        default=1024**2, ge=1024, description="Largest Event Grid delivery (Event Grid sends at most 1 MB)"
    )
    metrics_public: bool = Field(default=False, description="Serve /metrics without a token")
    metrics_token: SecretStr | None = Field(
        default=None, description="Bearer token a Prometheus scraper sends for /metrics (admins' API tokens work too)"
    )

    @field_validator("mqtt_url")
    @classmethod
    def _broker_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("mqtt://", "mqtts://")):
            raise ValueError(f"FASTLIMS_MQTT_URL={value!r} must start with mqtt:// or mqtts://")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"FASTLIMS_TIMEZONE={value!r} is not a known IANA time zone") from exc
        return value

    @cached_property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'fastlims.db').resolve()}"
