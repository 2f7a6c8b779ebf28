"""Settings read from the environment (prefix ``FASTINSIGHT_``) or a ``.env`` file."""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_INTERACTION_WEIGHTS: dict[str, float] = {
    "view": 1.0,
    "click": 2.0,
    "like": 4.0,
    "add_to_cart": 6.0,
    "purchase": 10.0,
    "rating": 3.0,
    "dislike": -5.0,
}


class Settings(BaseSettings):
    """All configuration; every field maps to ``FASTINSIGHT_<NAME>``."""

    model_config = SettingsConfigDict(
        env_prefix="FASTINSIGHT_", env_file=".env", extra="ignore", frozen=True
    )

    mongodb_uri: str = "mongodb://127.0.0.1:27017/"
    mongodb_db: str = "fastinsight"
    mongodb_timeout_ms: int = Field(default=2000, ge=100)

    # Secrets, never defaulted: serving refuses to start without both (see api/keys.py)
    # unless ``dev_mode`` is on, which generates them and answers loopback clients only.
    api_key: SecretStr | None = None
    admin_key: SecretStr | None = None
    dev_mode: bool = False
    operator_key: SecretStr | None = Field(
        default=None,
        description="the key of the operator API (/v1/operator/: tenants, their keys, usage); "
        "unset: no operator API, and the deployment serves its one default tenant as before",
    )
    control_db: str | None = Field(
        default=None, pattern=r"^[A-Za-z0-9_-]{1,63}$",
        description="database of tenants and their hashed keys; default <mongodb_db>_control",
    )
    tenant_max_loaded: int = Field(
        default=32, ge=1, description="tenants whose services (model, caches, pollers) one API "
        "process keeps loaded, the least recently used unloaded first; the default tenant stays")
    tenant_model_memory_mb: float = Field(
        default=4096.0, gt=0, description="bound on the model files of loaded tenants in one API "
        "process (MiB); loading one more unloads the least recently used others first")
    tenant_poll_seconds: float = Field(
        default=1.0, gt=0, description="how often a loaded tenant other than the default polls "
        "for new versions, events of other processes and experiments")
    tenant_cache_seconds: float = Field(
        default=2.0, gt=0, description="how long an API process trusts its copy of the tenants "
        "and keys: a revoked key or a suspension reaches every process within this time")
    tenant_rate_limit: float | None = Field(
        default=None, gt=0, description="requests per second per tenant per API process for "
        "tenants created without their own limit; unset: no limit")
    job_max_concurrent: int = Field(
        default=2, ge=1, description="operations jobs (retrains, backups, ...) one API process "
        "runs at once over all tenants; more wait their turn (status queued)")

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    var_dir: Path = Path("var")
    log_dir: Path = Path("var/log")
    model_cache_dir: Path | None = Field(
        default=None,
        description="where the API processes of a host keep their one shared copy of each "
        "served model version, mapped read-only by every worker; default <var_dir>/models",
    )
    log_json: bool = True

    max_body_bytes: int = Field(default=50 * 1024 * 1024, ge=1024,
                                description="largest request body of a file import (`.../import`)")
    max_json_body_bytes: int = Field(
        default=8 * 1024 * 1024, ge=1024,
        description="largest request body of every other route (the beacon: 64 KiB); JSON "
        "bodies are decoded before the key is checked, so this bounds what one request "
        "without a key costs the process")
    cors_origins: list[str] = Field(
        default_factory=list,
        description="web origins (e.g. https://shop.example) whose pages may call the API from "
        "the browser (the tracker in clients/js); empty: no cross-origin answers",
    )
    import_batch_size: int = Field(default=2000, ge=1, le=100_000)
    reject_unknown_items: bool = True

    interaction_weights: dict[str, float] = Field(
        default_factory=lambda: dict(DEFAULT_INTERACTION_WEIGHTS)
    )
    time_decay_half_life_days: float | None = None

    model_keep_versions: int = Field(
        default=5, ge=2,
        description="model versions kept stored, the active one included: the active version, "
        "the one active before it (the roll-back target), then the newest others; rejected "
        "versions only fill places left over. Older ones are deleted with their artefacts after "
        "each training run and by `fastinsight cleanup`. At least 2, so a roll-back is always possible.",
    )
    model_poll_seconds: float = Field(default=2.0, gt=0)
    catalog_refresh_seconds: float = Field(default=60.0, gt=0)
    realtime_poll_seconds: float = Field(default=0.05, gt=0)
    realtime_max_users: int = Field(
        default=100_000, ge=1,
        description="users whose real-time events each API process holds in memory (at most "
        "1,000 events each), the least recently used evicted first. An evicted user's events "
        "are read back from the database on their next request, so the bound trades memory "
        "for reads, never for correctness.",
    )
    ann_exact_max_items: int = Field(default=20_000, ge=0)
    candidate_cache_size: int = Field(
        default=50, ge=0, le=1000,
        description="best items kept per trained user at training time; 0 turns it off",
    )
    live_pools: bool = Field(
        default=True,
        description="score users with events since training from the version's candidate "
        "pools, exactly (recsys/pools.py); false: through the retrieval index (HNSW above "
        "ann_exact_max_items items), as versions trained without pools are",
    )
    live_cache_users: int = Field(
        default=5_000, ge=0,
        description="live users whose pooled candidates and last answer each served model "
        "keeps until their history changes (a few KB each); 0 scores every request",
    )
    default_algorithm: str = "als"

    boost_categories: dict[str, float] = Field(default_factory=dict)
    pinned_items: list[str] = Field(default_factory=list)
    max_per_category: int | None = Field(default=None, ge=1)

    # Impressions, attribution and experiments (docs/experiments.md).
    record_impressions: bool = True
    impression_buffer_max: int = Field(
        default=50_000, ge=100, description="impressions held in memory before new ones are dropped")
    impression_batch_size: int = Field(
        default=5000, ge=1, le=10_000, description="impressions per bucket document: fewer, larger "
        "writes cost the serving process less (each write hands the interpreter to the writer)")
    impression_flush_seconds: float = Field(default=1.0, gt=0)
    attribution_window_seconds: float = Field(default=86_400.0, gt=0)
    conversion_types: list[str] = Field(default_factory=lambda: ["purchase"])
    experiment_poll_seconds: float = Field(default=2.0, gt=0)
    report_cache_seconds: float = Field(default=10.0, ge=0)

    @field_validator("interaction_weights")
    @classmethod
    def _weights_not_empty(cls, value: dict[str, float]) -> dict[str, float]:
        if not value:
            raise ValueError("at least one interaction type is needed")
        bad = sorted(k for k, w in value.items() if not math.isfinite(w) or abs(w) > 1000)
        if bad:
            raise ValueError(f"weights must be finite numbers between -1000 and 1000: {bad}")
        return value

    @property
    def control_database(self) -> str:
        """Where tenants and their hashed keys live (``control_db``, else ``<mongodb_db>_control``)."""
        return self.control_db or f"{self.mongodb_db}_control"

    @property
    def interaction_types(self) -> frozenset[str]:
        return frozenset(self.interaction_weights)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
