from django.db import migrations
from pgvector.django import VectorExtension


class Migration(migrations.Migration):
    """pgvector first, on its own, so every later knowledge migration can use the vector type."""

    initial = True
    dependencies = []
    operations = [VectorExtension()]
