from django.db import migrations


class Migration(migrations.Migration):
    """HNSW (cosine) over customer-visible chunks only: pgvector 0.6 filters after the index scan, so
    a partial index keeps the searched set exactly the rows customers may see. Its own migration, as
    building it on a large table takes time."""

    dependencies = [("knowledge", "0002_articles_chunks")]

    operations = [
        migrations.RunSQL(
            "CREATE INDEX chunk_embedding_hnsw_public ON knowledge_chunk "
            "USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64) "
            "WHERE is_public",
            reverse_sql="DROP INDEX IF EXISTS chunk_embedding_hnsw_public",
        ),
    ]
