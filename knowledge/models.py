"""Knowledge base models (articles, chunks, embeddings) arrive with the knowledge issue; the pgvector
extension they need is installed by this app's first migration."""
