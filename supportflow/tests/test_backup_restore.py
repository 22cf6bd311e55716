"""Backup and restore of PostgreSQL with pgvector, done as docs/deploy.md ("Backup and restore") tells an
operator: ``pg_dump --format=custom``, then into a new database ``CREATE EXTENSION vector`` before
``pg_restore``. Run for real with the embedded server's own pg_dump / pg_restore / psql (the pgserver wheel
ships them) on the test database holding a knowledge base embedded by the real model."""

from __future__ import annotations

import os
import subprocess
import uuid

import psycopg
import pytest
from django.db import connection
from psycopg import sql

from knowledge import services
from knowledge.embeddings import embed_query
from knowledge.selectors import chunk_vector_candidates
from supportflow.devservices.postgres import EmbeddedPostgres

ARTICLES = {
    "charged-twice": (
        "Why was I charged twice?",
        "## Duplicate charges\n\nA second charge is usually a pending authorisation that your bank releases "
        "within 3–5 business days.\n\n## Refunds\n\nRefunds reach your card in 5–10 days.",
    ),
    "reset-sync": (
        "Reset sync on Android",
        "## Steps\n\nOpen Settings → Sync → Reset local cache when sync is stuck at a percentage.",
    ),
    "two-factor": (
        "Set up two-factor authentication",
        "## Authenticator apps\n\nScan the QR code with an authenticator app and keep your recovery codes safe.",
    ),
}
CHUNKS = "SELECT id, article_id, position, is_public, text, embedding::text FROM knowledge_chunk ORDER BY id"
# kb_search's vector half (knowledge.selectors._vector_candidates).
NEAREST = (
    "SELECT id FROM knowledge_chunk WHERE is_public AND namespace = 'default' AND embedding IS NOT NULL "
    "ORDER BY embedding <=> %s::vector LIMIT 5"
)


def _client(tool: str, *args: str) -> str:
    """Run one of the embedded server's client programs against the test server; its stdout."""
    db = connection.settings_dict
    env = {**os.environ, "PGPASSWORD": db.get("PASSWORD") or ""}
    address = ["--host", db["HOST"] or "127.0.0.1", "--port", str(db["PORT"] or 5432), "--username", db["USER"]]
    result = subprocess.run(
        [str(EmbeddedPostgres()._bin / tool), *address, *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, f"{tool}: {result.stderr}"
    return result.stdout


def _connect(dbname: str) -> psycopg.Connection:
    db = connection.settings_dict
    return psycopg.connect(
        host=db["HOST"] or "127.0.0.1",
        port=db["PORT"] or 5432,
        user=db["USER"],
        password=db.get("PASSWORD") or None,
        dbname=dbname,
        autocommit=True,
    )


def _nearest(conn, vector: list[float]) -> list[int]:
    conn.execute("SET hnsw.ef_search = 100")
    return [row[0] for row in conn.execute(NEAREST, [str(vector)])]


def _indexes(conn) -> list[tuple[str, str, bool]]:
    """knowledge_chunk's indexes: name, definition, and whether PostgreSQL may use it (built and valid)."""
    return conn.execute(
        "SELECT c.relname, pg_get_indexdef(i.indexrelid), i.indisvalid AND i.indisready FROM pg_index i "
        "JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = 'knowledge_chunk'::regclass ORDER BY c.relname"
    ).fetchall()


@pytest.fixture
def restore_target():
    """The name of a database that does not exist yet; dropped afterwards."""
    name = f"sf_restore_{uuid.uuid4().hex[:12]}"
    yield name
    with _connect("postgres") as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.mark.django_db(transaction=True)
def test_a_dump_restores_into_a_new_database_with_the_same_vectors_and_nearest_chunks(tmp_path, restore_target):
    # given: a knowledge base embedded by the real model, committed (pg_dump reads from its own connection)
    for slug, (title, body) in ARTICLES.items():
        services.article_save(title=title, body=body, status="published", slug=slug, reindex="now")
    question = embed_query("my card shows the same payment two times")
    with _connect(connection.settings_dict["NAME"]) as source:
        chunks = source.execute(CHUNKS).fetchall()
        migrations = source.execute("SELECT app, name FROM django_migrations ORDER BY id").fetchall()
        vector_version = source.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()
        indexes = _indexes(source)
    nearest = [chunk_id for chunk_id, _ in chunk_vector_candidates(vector=question, limit=5)]
    assert len(chunks) >= len(ARTICLES)
    assert len(nearest) >= 3  # an order to compare, not a single row
    assert all(row[5] is not None for row in chunks)  # every chunk has its embedding
    assert ("chunk_embedding_hnsw_public", True) in {(name, usable) for name, _, usable in indexes}

    # when: dumped in the custom format, restored into a new database where the extension comes first
    dump = tmp_path / "supportflow.dump"
    _client("pg_dump", "--format=custom", "--no-owner", "--file", str(dump), connection.settings_dict["NAME"])
    _client("createdb", restore_target)
    _client("psql", "--dbname", restore_target, "--set", "ON_ERROR_STOP=1", "--command", "CREATE EXTENSION vector")
    _client("pg_restore", "--no-owner", "--exit-on-error", "--dbname", restore_target, str(dump))

    # then: the same rows, vectors equal to the last digit, the HNSW index rebuilt, the same nearest chunks
    with _connect(restore_target) as restored:
        assert restored.execute(CHUNKS).fetchall() == chunks
        assert restored.execute("SELECT app, name FROM django_migrations ORDER BY id").fetchall() == migrations
        assert restored.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone() == (
            vector_version
        )
        assert _indexes(restored) == indexes
        assert _nearest(restored, question) == nearest
    with _connect(connection.settings_dict["NAME"]) as source:
        assert _nearest(source, question) == nearest  # the same query on the original: one answer, not two
