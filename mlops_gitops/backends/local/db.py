"""Tables of the metadata store (SQLAlchemy Core; SQLite by default, PostgreSQL works too)."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Engine,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    inspect,
    text,
)
from sqlalchemy.engine import Connection

from mlops_gitops.redact import mask_credentials

SCHEMA_VERSION = "2"

metadata = MetaData()

meta = Table("mg_meta", metadata, Column("key", String(64), primary_key=True), Column("value", Text))

# The state serial: bumped atomically by every write (`serial = serial + 1`), one row.
serial = Table("mg_serial", metadata, Column("id", Integer, primary_key=True), Column("value", Integer, nullable=False))

resources = Table(
    "mg_resources",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(32), nullable=False),
    Column("name", String(300), nullable=False),
    Column("version", String(80), nullable=False, default=""),
    Column("schema_name", String(64), nullable=False, default=""),
    Column("spec", Text, nullable=False),
    Column("derived", Text, nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("spec_hash", String(64), nullable=False),
    Column("applied_spec", Text),
    Column("applied_hash", String(64)),
    Column("status", String(16), nullable=False, default="active"),
    Column("managed", Boolean, nullable=False, default=True),
    Column("source_file", Text),
    Column("created_at", String(40), nullable=False),
    Column("updated_at", String(40), nullable=False),
    Column("provenance", Text, nullable=False, default="{}"),
    UniqueConstraint("kind", "name", "version", name="uq_mg_resource_identity"),
)

asset_files = Table(
    "mg_asset_files",
    metadata,
    Column("resource_id", Integer, ForeignKey("mg_resources.id", ondelete="CASCADE"), primary_key=True),
    Column("rel", String(1000), primary_key=True),
    Column("sha256", String(64), nullable=False),
    Column("size", Integer, nullable=False),
)

tags = Table(
    "mg_tags",
    metadata,
    Column("resource_id", Integer, ForeignKey("mg_resources.id", ondelete="CASCADE"), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("value", Text, nullable=False),
    Index("ix_mg_tags_kv", "key", "value"),
)

# Every file this store put into artifacts/ (recorded before it is copied). Garbage collection deletes
# only files recorded here that nothing references: files it never recorded are never its to delete.
blobs = Table(
    "mg_blobs",
    metadata,
    Column("sha256", String(64), primary_key=True),
    Column("recorded_at", String(40), nullable=False),
)

# Remote inputs already downloaded (https files, datastore blobs): what validator (ETag or Last-Modified)
# the copy in artifacts/ had, so an unchanged object is not fetched again. Keyed by a hash of the URL
# (URLs may carry SAS tokens); `shown` is the masked URL.
remote_objects = Table(
    "mg_remote_objects",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("shown", Text, nullable=False),
    Column("etag", Text, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("size", Integer, nullable=False),
    Column("fetched_at", String(40), nullable=False),
)

counters = Table(
    "mg_counters",
    metadata,
    Column("kind", String(32), primary_key=True),
    Column("name", String(300), primary_key=True),
    Column("last", Integer, nullable=False),
)

changes = Table(
    "mg_changes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("apply_id", String(64)),
    Column("at", String(40), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("name", String(300), nullable=False),
    Column("version", String(80), nullable=False, default=""),
    Column("action", String(16), nullable=False),
    Column("origin", String(16), nullable=False),
    Column("before_hash", String(64)),
    Column("after_hash", String(64)),
    Column("source_file", Text),
    Column("provenance", Text, nullable=False, default="{}"),
    Index("ix_mg_changes_identity", "kind", "name"),
)

journal = Table(
    "mg_journal",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("apply_id", String(64), nullable=False),
    Column("at", String(40), nullable=False),
    Column("address", Text, nullable=False),
    Column("action", String(16), nullable=False),
    Column("phase", String(16), nullable=False),  # begin | end | failed
    Column("detail", Text, nullable=False, default=""),
    Index("ix_mg_journal_apply", "apply_id"),
)

applies = Table(
    "mg_applies",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("started_at", String(40), nullable=False),
    Column("finished_at", String(40)),
    Column("status", String(16), nullable=False),  # running | succeeded | failed
    Column("who", Text, nullable=False),
    Column("source", Text, nullable=False, default="{}"),
    Column("summary", Text, nullable=False, default="{}"),
)

endpoint_keys = Table(
    "mg_endpoint_keys",
    metadata,
    Column("endpoint", String(64), primary_key=True),
    Column("primary_key", Text, nullable=False),
    Column("secondary_key", Text, nullable=False),
)

locks = Table(
    "mg_locks",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("id", String(64), nullable=False),
    Column("operation", String(32), nullable=False),
    Column("who", Text, nullable=False),
    Column("host", Text, nullable=False),
    Column("pid", Integer, nullable=False),
    Column("created", String(40), nullable=False),
    Column("reason", Text, nullable=False, default=""),
)


# Lifecycle events, as delivered (CloudEvents JSON); read back by `events list|tail`.
events = Table(
    "mg_events",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("id", String(64), nullable=False, unique=True),
    Column("at", String(40), nullable=False),
    Column("type", String(64), nullable=False),
    Column("subject", Text, nullable=False),
    Column("document", Text, nullable=False),
)

# Pipeline runs: one row per run, one per step, and the reuse cache (step key -> outputs).
runs = Table(
    "mg_runs",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("pipeline", String(300), nullable=False),
    Column("status", String(16), nullable=False),  # running | completed | failed | cancelled
    Column("cancel_requested", Boolean, nullable=False, default=False),
    Column("started_at", String(40), nullable=False),
    Column("finished_at", String(40)),
    Column("submitted_by", Text, nullable=False),
    Column("pid", Integer),
    Column("owner", Text),  # host:pid:start time of the process running it (is it still alive?)
    Column("source_file", Text),
    Column("apply_id", String(64)),
    Column("snapshot", Text, nullable=False, default="{}"),  # git commit, diff, parameters, environments
    Column("outputs", Text, nullable=False, default="{}"),
    Column("message", Text, nullable=False, default=""),
)

run_steps = Table(
    "mg_run_steps",
    metadata,
    Column("run_id", String(64), ForeignKey("mg_runs.id", ondelete="CASCADE"), primary_key=True),
    Column("step", String(255), primary_key=True),
    Column("status", String(16), nullable=False),
    Column("key", String(64), nullable=False, default=""),
    Column("component", Text, nullable=False, default=""),
    Column("exit_code", Integer),
    Column("pid", Integer),
    Column("started_at", String(40)),
    Column("finished_at", String(40)),
    Column("inputs", Text, nullable=False, default="{}"),
    Column("outputs", Text, nullable=False, default="{}"),
    Column("metrics", Text, nullable=False, default="{}"),
    Column("environment", Text, nullable=False, default="{}"),
    Column("reused_from", Text, nullable=False, default=""),
    Column("log", Text, nullable=False, default=""),
    Column("message", Text, nullable=False, default=""),
)

# Files a running run reads or is writing (its inputs, code and outputs not yet recorded): garbage collection
# keeps them while the run is running; its end, or the reaping of a run whose process is gone, drops them.
leases = Table(
    "mg_leases",
    metadata,
    Column("run_id", String(64), primary_key=True),
    Column("sha256", String(64), primary_key=True),
)

# Occurrences of schedules that fired (or were recorded as skipped): the primary key is the claim, so two
# runners (a CI cron job, an endpoint host) never fire the same occurrence twice.
schedule_fires = Table(
    "mg_schedule_fires",
    metadata,
    Column("schedule", String(300), primary_key=True),
    Column("occurrence", String(40), primary_key=True),  # UTC, ISO 8601
    Column("fired_at", String(40), nullable=False),
    Column("status", String(16), nullable=False),  # firing | completed | failed | not_run
    Column("fired_by", Text, nullable=False),  # run-due | trigger | host:<id>
    Column("missed", Integer, nullable=False, default=0),  # earlier occurrences this one stood for
    Column("run_id", String(64)),
    Column("message", Text),
)

# Runs of monitors (a schedule's create_monitor): each signal's per-feature metrics, pass or breach, and the
# data windows compared (their assets and hashes).
monitor_runs = Table(
    "mg_monitor_runs",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("schedule", String(300), nullable=False),
    Column("started_at", String(40), nullable=False),
    Column("finished_at", String(40)),
    Column("status", String(16), nullable=False),  # passed | breached | failed
    Column("signals", Text, nullable=False),  # JSON: the signals' results
    Column("data", Text, nullable=False),  # JSON: reference and production data of each signal, with hashes
    Column("message", Text),
)

# Endpoint hosts that follow the workspace (`serve --follow`): what each serves, at which state serial.
hosts = Table(
    "mg_hosts",
    metadata,
    Column("id", String(300), primary_key=True),  # e.g. "web-1:/srv/ws" (--host-id)
    Column("url", Text, nullable=False),
    Column("pid", Integer),
    Column("serial", Integer, nullable=False),  # the state serial it last converged to
    Column("started_at", String(40), nullable=False),
    Column("heartbeat", String(40), nullable=False),
    Column("status", Text, nullable=False, default="{}"),  # deployments and traffic served, failures
)

figures = Table(  # what each endpoint host measured per deployment (cumulative), recorded every second
    "mg_figures",
    metadata,
    Column("host", String(300), primary_key=True),
    Column("deployment", String(300), primary_key=True),  # endpoint/name
    Column("at", String(40), nullable=False),
    Column("figures", Text, nullable=False),  # {"requests", "errors", "latency_us", "buckets"}
)

step_cache = Table(
    "mg_step_cache",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("run_id", String(64), nullable=False),
    Column("step", String(255), nullable=False),
    Column("outputs", Text, nullable=False),
    Column("metrics", Text, nullable=False, default="{}"),
    Column("created_at", String(40), nullable=False),
)


def add_missing_columns(conn: Connection) -> None:
    """Columns that newer versions added to existing tables (all nullable): ALTER TABLE … ADD COLUMN."""
    inspector = inspect(conn)
    for table in metadata.sorted_tables:
        have = {c["name"] for c in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name not in have:
                kind = column.type.compile(dialect=conn.dialect)
                conn.execute(text(f'ALTER TABLE {table.name} ADD COLUMN "{column.name}" {kind}'))


def mask_url(url: str) -> str:
    """Hide the password of a database URL in messages."""
    return mask_credentials(url)


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return create_engine(url, pool_pre_ping=True, pool_size=2, max_overflow=4)
