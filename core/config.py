"""Settings, read from environment variables and a `.env` file (pydantic-settings). One group per concern.

Every field is documented in the README's settings table; keep the two in step.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.domain import DEFAULT_MODEL
from core.editing.registry import ModelSpec, parse_models


def _group(prefix: str) -> SettingsConfigDict:
    return SettingsConfigDict(env_prefix=prefix, env_file=".env", extra="ignore")


class EditorSettings(BaseSettings):
    model_config = _group("EDITBOT_")

    model: str = DEFAULT_MODEL
    """Hub id, local diffusers folder, single-file checkpoint (.ckpt/.safetensors), or `tiny` / `full-random`."""
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"
    dtype: Literal["auto", "float32", "float16", "bfloat16"] = "auto"
    """auto: float16 on CUDA, float32 on CPU."""
    max_side: int = Field(512, ge=64, le=2048)
    """Longest side of the working resolution; sides are rounded down to multiples of 8."""
    keep_original_size: bool = False
    """With output "working": return results scaled back to the input's size instead of the working size."""
    output: Literal["full", "working"] = "full"
    """full: each result is the parent at its full size with the model's change transferred onto it
    (core.editing.transfer); working: results at the working size, as the model returns them."""
    segmentation_model: str = "CIDAS/clipseg-rd64-refined"
    """CLIPSeg model that finds regions named in words: hub id, local folder, or `tiny` (random, for tests)."""
    scheduler: Literal["default", "euler-a", "ddim", "dpm++"] = "default"
    safety_checker: bool = True
    fast: bool = False
    """Opt-in speed-ups that change the maths slightly (see README)."""
    compile: bool = False
    """torch.compile the UNet on CUDA (slow first edit, faster after)."""
    threads: int = Field(0, ge=0, le=1024)
    """torch's CPU threads in the process that runs the model (the translator shares them); 0: torch's default, one
    per core. 1 is far faster where other processes keep the cores busy: the threads of one operation wait for each
    other (docs/performance.md)."""
    single_file_config: str | None = None
    """For a single-file checkpoint: a local diffusers folder (or hub id) with the matching configs; needed offline."""
    offline: bool = False
    """Never contact the model hub; use only what is in the local cache."""
    models: str | None = None
    """Enabled models: comma-separated name=source pairs, the first the default; a source may name its family
    (family:source), else it is inferred (core.editing.registry). Unset: one model, `default`, from MODEL."""
    models_loaded: int = Field(1, ge=1, le=16)
    """How many models stay in memory at once; switching to another loads it and drops the least recently used."""
    cpu_offload: bool = False
    """Keep each model on the CPU until the pipeline needs it (CUDA only): less GPU memory, slower edits."""
    vae_tiling: bool = False
    """Decode and encode large pictures in tiles: far less VAE memory, same size limits."""

    @field_validator("models")
    @classmethod
    def _known_models(cls, value: str | None) -> str | None:
        if value is not None:
            parse_models(value)  # ValueError with one line: unknown family, family missing, bad pair
        return value

    @property
    def model_specs(self) -> list[ModelSpec]:
        """The enabled models, the default first."""
        if self.models is None:
            return [ModelSpec("default", "pix2pix", self.model)]
        return parse_models(self.models)


class TranslationSettings(BaseSettings):
    """Instructions in other languages, translated to English on this machine before the edit (core/translation.py)."""

    model_config = _group("EDITBOT_")

    translation_model: str = "facebook/m2m100_418M"
    """Hub id or local folder of a transformers translation model (M2M-100, NLLB-200 or Marian opus-mt-*-en);
    `none`: hold non-English instructions back with a hint, as before; `tiny` / `full-random`: built in code."""
    translation_device: Literal["editor", "cpu"] = "editor"
    """editor: the editor's device (EDITBOT_DEVICE); cpu: keep the GPU for the editor."""
    translation_idle_seconds: float = Field(600.0, ge=0.0)
    """Free the translation model after this many seconds without a translation; 0: keep it loaded."""
    translation_int8: bool = True
    """On a CPU, run the translation model's linear layers in int8 (about 2.5 times less CPU time per instruction,
    half the memory); false: float32, for whoever finds int8's wording worse. A GPU always runs float16."""


class StorageSettings(BaseSettings):
    model_config = _group("EDITBOT_")

    data_dir: Path = Path("data")
    database_url: str | None = None
    """SQLAlchemy URL; default: SQLite at DATA_DIR/editbot.sqlite3."""

    @property
    def url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'editbot.sqlite3').resolve()}"

    @property
    def image_dir(self) -> Path:
        return self.data_dir / "images"


class LimitSettings(BaseSettings):
    model_config = _group("EDITBOT_")

    max_pixels: int = 40_000_000
    """Images with more pixels are refused before decoding (decompression bombs)."""
    max_upload_bytes: int = 20 * 1024 * 1024
    min_side: int = 32
    max_aspect: float = 8.0
    max_output_side: int = Field(4096, ge=64, le=16384)
    """Photos with a longer side are brought down to it once, when received; results are at most this size."""
    max_waiting_per_person: int = 1
    """Edits waiting, and photos being read, per person at once."""
    max_waiting_total: int = 100
    max_stored_mb_per_person: int = Field(5000, ge=1)
    """What one person's pictures may take in the image store, as stored, across their chats; new photos and edits
    are refused once it is reached (retention, or an operator, frees room)."""

    @property
    def intake(self) -> dict:
        """The keyword arguments of core.images.load_untrusted that these settings fix."""
        return {"max_pixels": self.max_pixels, "min_side": self.min_side, "max_aspect": self.max_aspect,
                "max_output_side": self.max_output_side}


class TelegramSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TELEGRAM_", env_file=".env", extra="ignore")

    bot_token: str | None = None
    base_url: str = "https://api.telegram.org/bot"
    base_file_url: str = "https://api.telegram.org/file/bot"
    webhook_url: str | None = None
    """Public URL for webhook mode; long polling when unset."""
    webhook_listen: str = "0.0.0.0"
    webhook_port: int = 8443
    allowed_ids: set[int] = set()
    """User or chat ids allowed to use the bot; empty: everyone."""


class DiscordSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DISCORD_", env_file=".env", extra="ignore")

    bot_token: str | None = None
    allowed_ids: set[int] = set()
    """Guild or user ids allowed to use the bot; empty: everyone."""


class WebSettings(BaseSettings):
    """The web chat (bot/web): a page for browsers, the local default when no bot token is set."""

    model_config = _group("EDITBOT_")

    web: bool = False
    """Serve the web chat beside the bots in `editbot bots` (`editbot web` serves it alone)."""
    web_host: str = "127.0.0.1"
    """Where the page listens; the default keeps it off the network."""
    web_port: int = Field(7860, ge=1, le=65535)
    web_password: str | None = None
    """A shared password the page asks for before anything else; unset: no password (fine on 127.0.0.1)."""
    web_secret: str | None = None
    """Key that signs the browsers' cookies; unset: a random one kept in DATA_DIR/web-secret. Front-ends that share
    browsers (several behind one address) need the same value."""


class OpsSettings(BaseSettings):
    """Running the bot as a service: health and metrics endpoint, logs, admins, data retention."""

    model_config = _group("EDITBOT_")

    http_host: str = "127.0.0.1"
    http_port: int = Field(8080, ge=0, le=65535)
    """Port of /healthz and /metrics; 0 disables the endpoint."""
    log_format: Literal["text", "json"] = "text"
    """json: one JSON object per line, with a `conversation` field where there is one."""
    admin_ids: set[str] = set()
    """People allowed the admin commands, as "platform:user_id", e.g. ["telegram:12345", "discord:67890"]."""
    retention_days: int | None = Field(None, ge=1)
    """Delete edit trees untouched for this many days (daily, while a bot runs); unset: keep forever."""
    shutdown_grace_seconds: float = Field(30.0, ge=0)
    """Embedded mode: on SIGTERM, how long the running edit may take to finish before it is stopped (waiting ones
    are told at once; all of them are offered again after the restart)."""
    warmup: bool = True
    """Run one tiny edit after loading the model, so the first person does not wait for the GPU to warm up."""


class DistributedSettings(BaseSettings):
    """Scale-out: front-ends queue edits through Taskiq on Redis, `editbot worker` processes (one per GPU) run them."""

    model_config = _group("EDITBOT_")

    mode: Literal["embedded", "distributed"] = "embedded"
    """embedded: the in-process queue runs the model; distributed: jobs go to workers through Redis."""
    redis_url: str = "redis://127.0.0.1:6379/0"
    queue_name: str = Field("editbot", pattern=r"^[A-Za-z0-9_.:-]{1,64}$")
    """Prefix of every Redis key (job stream, progress channels, cancel flags): deployments sharing a Redis differ."""
    frontend_id: str | None = Field(None, pattern=r"^[A-Za-z0-9_.:-]{1,64}$")
    """This front-end's name in the job table, to re-attach its jobs after a restart; default: the platform's name."""
    redeliver_seconds: float = Field(120.0, ge=1.0)
    """A job unacknowledged this long, with no progress from its worker, goes to another worker (its worker died)."""
    worker_batch_size: int = Field(1, ge=1, le=16)
    """Jobs a worker reads at once; those sharing working size, steps and scheduler run as one batched call, each
    still recorded and acknowledged on its own (bot.distributed.worker). 1: one job at a time."""
    image_store: Literal["local", "s3"] = "local"
    """local: files under DATA_DIR (a shared folder when workers run elsewhere); s3: an S3-compatible bucket."""
    s3_endpoint_url: str | None = None
    """For S3-compatible stores (MinIO, Ceph...); unset: AWS S3."""
    s3_bucket: str = "editbot-images"
    s3_region: str | None = None
    s3_access_key: str | None = None
    s3_secret_key: str | None = None
    """Unset keys: boto3's usual credential chain (environment, profile, instance role)."""


class Settings:
    """All groups together; each reads the environment on its own."""

    def __init__(self) -> None:
        self.editor = EditorSettings()
        self.translation = TranslationSettings()
        self.storage = StorageSettings()
        self.limits = LimitSettings()
        self.telegram = TelegramSettings()
        self.discord = DiscordSettings()
        self.web = WebSettings()
        self.ops = OpsSettings()
        self.distributed = DistributedSettings()
