"""Knowledge base benchmark: pgvector HNSW recall and latency at 10k/100k chunks, and ingestion throughput.

Run from the repository root, with the embedded services up::

    python -m supportflow.devservices exec -- .venv/bin/python bench/kb_bench.py \
        [--sizes 10000,100000] [--queries 200] [--out docs/benchmarks.md]

What it does, in order:

1. Builds ``max(sizes)`` distinct chunk texts of 40-200 words from the public datasets in
   ``--data`` (bitext customer-support answers, the English openticketai tickets and answers, the
   stackfaq answers): each text is a run of sentences from one source paragraph, continued with
   sentences of paragraphs of the same category, placeholders ({{Website Name}}, order numbers, ...)
   filled with varied values. The texts are made in memory at run time; nothing is copied into the
   project. Embeds them with the app's model (``knowledge.embeddings.embed``, all-MiniLM-L6-v2 on
   CPU) in blocks of 1,000, each block cached in ``--cache-dir`` (``/tmp``) under the hash of the
   model name and its texts, with the seconds it took, so re-runs skip the model. Before embedding
   more than one block it projects the time from the rate measured in this run and, above
   ``--max-embed-minutes``, skips that size and says so (it never shrinks a size silently).
2. Takes ``--queries`` real user questions (bitext customer requests, stackfaq paraphrased
   questions, banking77 requests), none of them a corpus text, and embeds them with the same model.
3. For each size N: drops and recreates its own database ``supportflow_kbbench`` (never another one),
   migrates it, creates a few hundred published articles (default namespace) and COPYs N public
   chunks (text, hash, tsvector, embedding) into ``knowledge_chunk`` with the HNSW index dropped,
   then rebuilds the index from the migration's own definition (read back from ``pg_indexes``),
   timed, at the server's ``maintenance_work_mem`` (and, for comparison, at ``--compare-build-mem``
   first), then ``VACUUM ANALYZE``. Searches every query:
   - exact: the app's query with ``SET LOCAL enable_indexscan = off`` (a scan + top-N sort) -> the
     true top 10 (cross-checked against a numpy brute force over the same vectors);
   - HNSW: the app's query shape (``WHERE is_public AND namespace = 'default' AND embedding IS NOT
     NULL ORDER BY embedding <=> q LIMIT 10``, transaction + ``SET LOCAL hnsw.ef_search``) at each
     ``--ef`` value;
   - the app's own call ``knowledge.selectors.chunk_vector_candidates(limit=50)`` as ``kb_search``
     makes it (ef_search = ``knowledge.selectors.ef_search(50)``, LIMIT 50): its first 10 against the
     true top 10, and all 50 against the true top 50.
   Configurations are interleaved per query (rotating order) after a warm-up; recall@10 and p50/p95
   latency (client side: transaction, SET LOCAL, query, fetch) are reported. EXPLAIN (ANALYZE,
   BUFFERS) of one query per configuration is kept as evidence that the index is (not) used.
4. Ingestion: ``--ingest-texts`` corpus texts as ``--ingest-articles`` markdown files (a title, a
   few sections, one paragraph per text), ingested through ``knowledge.services.ingest_files`` (parse,
   save, chunk, hash, embed, bulk insert, tsvector update), against bare ``model.encode`` of exactly
   the texts the app embeds (title + heading path + chunk text). The files are split into
   ``--ingest-groups`` groups and each repeat runs every group through both, the order alternating
   by group and repeat, so load from other processes on the shared machine hits both alike. The
   knowledge tables are truncated before every app unit, so the embedding reuse cache (lookup by
   content hash) can find nothing; the run checks that the app embedded every chunk it stored and
   that those are exactly the bare texts.
5. Prints tables and, as the very last stdout line, one JSON object; rewrites the
   ``## Knowledge base: vector search and ingestion`` section of ``docs/benchmarks.md``. Drops the
   bench database at the end unless ``--keep``.

Every loop is bounded in count; long statements run under a ``statement_timeout``.
"""

# ruff: noqa: S311, S608 — random only varies bench texts; subprocess is this interpreter with fixed
# arguments; SQL identifiers are module constants

from __future__ import annotations

import argparse
import csv
import datetime as dt
import hashlib
import json
import math
import os
import platform
import random
import re
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
from _harness import (
    BASE_DIR,
    admin_connect,
    bench_services,
    close_django_connections,
    django_setup,
    docs_update,
    drop_database,
    fmt,
    log,
    manage,
    percentile,
    recreate_database,
)

BENCH_DB_NAME = "supportflow_kbbench"
BENCH_REDIS_DB = 8  # nothing on the measured path uses Redis; kept off the app's (0-2), chat bench (5-7), tests
BENCH_REDIS_AUX_DB = 9
SECRET_KEY = "supportflow-kb-bench-only-secret-key-never-used-outside-this-script-0123456789"  # noqa: S105
SECTION_HEADING = "## Knowledge base: vector search and ingestion"
INDEX_NAME = "chunk_embedding_hnsw_public"
NAMESPACE = "default"
K = 10
APP_CANDIDATES = 50  # kb_search's default `candidates`
BLOCK = 1000  # texts per embedding cache file
N_ARTICLES = 400
RECALL_TARGET = 0.95
P95_TARGET_MS = 20.0
TARGET_SIZE = 100_000
INGEST_RATIO_TARGET = 0.8
STATEMENT_TIMEOUT_MS = 45 * 60 * 1000
DEFAULT_DATA = BASE_DIR.parent / "shared" / "datasets"
DEFAULT_CACHE = Path(tempfile.gettempdir()) / "supportflow-kbbench"

VECTOR_SQL = (
    "SELECT id, 1 - (embedding <=> %s::vector) FROM knowledge_chunk "
    "WHERE is_public AND namespace = %s AND embedding IS NOT NULL ORDER BY embedding <=> %s::vector LIMIT %s"
)


# --- statistics -----------------------------------------------------------------------------------


def rnd(value, digits: int = 2):
    return None if value is None else round(value, digits)


class Clock:
    """Wall and this process's CPU time of a phase, and the machine's load average at its end."""

    def __init__(self) -> None:
        self.wall0 = time.perf_counter()
        self.cpu0 = self._cpu()

    @staticmethod
    def _cpu() -> float:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime

    def stop(self) -> dict:
        wall = time.perf_counter() - self.wall0
        cpu = self._cpu() - self.cpu0
        return {
            "wall_s": round(wall, 3),
            "cpu_s": round(cpu, 3),
            "cpu_pct": round(100.0 * cpu / wall, 1) if wall > 0 else None,
            "loadavg_1m": round(os.getloadavg()[0], 2),
        }


def other_busy_processes(limit: int = 5) -> list[str]:
    """Processes other than this one (and PostgreSQL backends) using CPU now: noise to report."""
    try:
        out = subprocess.run(
            ["/bin/ps", "-eo", "pid,pcpu,etimes,args", "--sort=-pcpu", "--no-headers"],
            capture_output=True, text=True, timeout=10, check=False,
        ).stdout  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return []
    busy = []
    for line in out.splitlines():
        parts = line.split(None, 3)
        if len(parts) < 4 or int(parts[0]) == os.getpid():
            continue
        try:
            pcpu = float(parts[1])
        except ValueError:
            continue
        if pcpu >= 20.0:
            busy.append(f"{parts[3][:90]} ({pcpu:.0f}% avg)")
        if len(busy) >= limit:
            break
    return busy


# --- environment and database ---------------------------------------------------------------------


def bench_env(base: dict[str, str]) -> dict[str, str]:
    services = bench_services(
        base, script="kb_bench.py", db_name=BENCH_DB_NAME, redis_db=BENCH_REDIS_DB, cache_db=BENCH_REDIS_AUX_DB,
        channels_db=BENCH_REDIS_AUX_DB,
    )  # fmt: skip
    env = dict(base)
    env.update(
        services,
        SECRET_KEY=base.get("SECRET_KEY") or SECRET_KEY,
        DEBUG="0",
        FEATURE_AI_AUTO_REPLY="0",
        TOKENIZERS_PARALLELISM="false",
        PYTHONUNBUFFERED="1",
    )
    return env


def recreate_and_migrate(env: dict[str, str]) -> float:
    clock = time.perf_counter()
    recreate_database(env["DATABASE_URL"], BENCH_DB_NAME)
    manage(env, "migrate", "--noinput", "-v", "0", timeout=600)
    return time.perf_counter() - clock


def raw_connect(env: dict[str, str]):
    """A plain psycopg connection to the bench database (bulk load, DDL, VACUUM), with pgvector types."""
    import psycopg
    from pgvector.psycopg import register_vector

    conn = psycopg.connect(env["DATABASE_URL"], autocommit=True, connect_timeout=10)
    conn.execute(f"SET statement_timeout = {STATEMENT_TIMEOUT_MS}")
    register_vector(conn)
    return conn


def server_facts(conn) -> dict:
    names = (
        "server_version", "shared_buffers", "maintenance_work_mem", "work_mem", "effective_cache_size",
        "max_parallel_maintenance_workers", "max_parallel_workers_per_gather", "fsync", "synchronous_commit",
        "jit", "random_page_cost",
    )  # fmt: skip
    facts = {name: conn.execute(f"SHOW {name}").fetchone()[0] for name in names}
    row = conn.execute("SELECT default_version FROM pg_available_extensions WHERE name = 'vector'").fetchone()
    facts["pgvector"] = row[0] if row else None
    return facts


# --- corpus and queries (read from the datasets at run time, never copied) ------------------------

PLACEHOLDER_RE = re.compile(r"\{\{\s*([^}]+?)\s*\}\}")
SENTENCE_RE = re.compile(r"(?<=[.!?])\s+|\n+")
COMPANIES = ("Northwind", "Acme Outfitters", "BrightCart", "Helio Home", "Parcelly", "Lumen Books", "Orbit Mobile")
DOMAINS = ("northwind.example.com", "shop.acme.example", "brightcart.example.net", "help.parcelly.example")
HOURS = (
    "Monday to Friday, 8 am to 8 pm",
    "24/7",
    "weekdays from 9 am to 6 pm CET",
    "every day between 7 am and 11 pm",
    "Monday to Saturday, 9 to 5",
)
HEADINGS = ("Overview", "Before you start", "Step by step", "Troubleshooting", "Billing", "Good to know", "Contact us")


def _placeholder_value(name: str, rng: random.Random) -> str:
    low = name.lower()
    if "phone" in low:
        return f"+1-800-555-{rng.randint(0, 9999):04d}"
    if "email" in low:
        return f"{rng.choice(('support', 'help', 'care', 'billing'))}@{rng.choice(DOMAINS)}"
    if "url" in low:
        return f"https://{rng.choice(DOMAINS)}/{rng.choice(('help', 'account', 'orders', 'returns'))}"
    if "anonymized" in low or low.endswith((" number", " id")):
        return str(rng.randint(10**5, 10**11))
    if "availability" in low or "hours" in low:
        return rng.choice(HOURS)
    if "website name" in low or "company name" in low:
        return rng.choice(COMPANIES)
    if "amount" in low or "fee" in low:
        return f"${rng.randint(5, 250)}.{rng.randint(0, 99):02d}"
    return name  # UI section names: "Order History", "Live Chat", ...


def fill_placeholders(text: str, rng: random.Random) -> str:
    return PLACEHOLDER_RE.sub(lambda m: _placeholder_value(m.group(1), rng), text)


def sentences_of(text: str) -> list[str]:
    out = []
    for piece in SENTENCE_RE.split(text.replace("\\n", "\n")):
        words = piece.split()
        if words:
            out.append(" ".join(words))
    return out


def read_csv(path: Path) -> list[dict]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def load_sources(data: Path) -> dict:
    """Paragraphs (category, sentences) for the corpus; article titles; candidate questions."""
    paragraphs: list[tuple[str, list[str]]] = []
    counts: Counter = Counter()
    bitext = read_csv(data / "bitext_customer_support" / "bitext.csv")
    for row in bitext:
        sents = sentences_of(row["response"])
        if sents:
            paragraphs.append((f"bitext:{row['category']}", sents))
            counts["bitext_customer_support responses"] += 1
    tickets = [r for r in read_csv(data / "openticketai_support_tickets" / "tickets_v5.csv") if r["language"] == "en"]
    for row in tickets:
        for column in ("body", "answer"):
            sents = sentences_of(row[column])
            if len(sents) >= 2:
                paragraphs.append((f"tickets:{row['queue']}", sents))
                counts[f"openticketai (en) ticket {'bodies' if column == 'body' else 'answers'}"] += 1
    kb = json.loads((data / "stackfaq" / "kb.json").read_text(encoding="utf-8"))
    for thread in kb:
        for answer in thread["answers"]:
            sents = sentences_of(answer)
            if sum(len(s.split()) for s in sents) >= 15:
                paragraphs.append(("stackfaq", sents))
                counts["stackfaq answers"] += 1
    titles: list[str] = []
    seen: set[str] = set()
    for title in [t["question"] for t in kb] + [r["subject"] for r in tickets]:
        title = " ".join((title or "").split())
        if title and title.lower() not in seen and len(title) <= 120:
            seen.add(title.lower())
            titles.append(title)
    questions = {
        "bitext": [" ".join(r["instruction"].split()) for r in bitext],
        "stackfaq": [
            " ".join(q["query"].split()) for q in json.loads((data / "stackfaq" / "queries.json").read_text())
        ],
        "banking77": [" ".join(r["text"].split()) for r in read_csv(data / "banking77" / "train.csv")],
    }
    return {"paragraphs": paragraphs, "source_counts": dict(counts), "titles": titles, "questions": questions}


def make_texts(paragraphs: list[tuple[str, list[str]]], n: int, seed: int) -> list[str]:
    """``n`` distinct texts of 40-200 words: a run of sentences from one paragraph, continued with
    paragraphs of the same category, placeholders filled. Sequential from one seed, so the first
    10,000 of a 100,000 run are the 10,000 of a 10,000 run."""
    rng = random.Random(seed)
    by_category: dict[str, list[list[str]]] = {}
    for category, sents in paragraphs:
        by_category.setdefault(category, []).append(sents)
    texts: list[str] = []
    seen: set[str] = set()
    for _ in range(n * 3):  # bounded: duplicates are rare
        if len(texts) >= n:
            break
        category, sents = paragraphs[rng.randrange(len(paragraphs))]
        pool = by_category[category]
        target = rng.randint(40, 200)
        current, index = sents, rng.randrange(len(sents))
        out: list[str] = []
        words = 0
        for _step in range(60):
            if words >= target:
                break
            if index >= len(current):
                current, index = pool[rng.randrange(len(pool))], 0
            sentence = fill_placeholders(current[index], rng).split()
            index += 1
            if words + len(sentence) > 200:
                if words >= 40:
                    break
                sentence = sentence[: 200 - words]
            out.append(" ".join(sentence))
            words += len(sentence)
        text = " ".join(out)
        if words >= 40 and text not in seen:
            seen.add(text)
            texts.append(text)
    if len(texts) < n:
        raise RuntimeError(f"could only make {len(texts)} distinct texts of the {n} asked")
    return texts


def make_queries(questions: dict[str, list[str]], n: int, corpus: set[str], seed: int) -> tuple[list, dict]:
    """``n`` user questions as (text, source): half bitext customer requests, 30% stackfaq paraphrases,
    20% banking77 (banking questions: the corpus has no banking articles, so these are off-topic asks)."""
    rng = random.Random(seed + 7)
    shares = {"bitext": 0.5, "stackfaq": 0.3, "banking77": 0.2}
    wanted = {name: round(n * share) for name, share in shares.items()}
    wanted["bitext"] += n - sum(wanted.values())
    picked: list[tuple[str, str]] = []
    taken: set[str] = set()
    used: Counter = Counter()
    for name, count in wanted.items():
        pool = list(dict.fromkeys(q for q in questions[name] if q))
        rng.shuffle(pool)
        for question in pool:
            if used[name] >= count:
                break
            question = fill_placeholders(question, rng)
            if question in taken or question in corpus or len(question.split()) < 3:
                continue
            taken.add(question)
            picked.append((question, name))
            used[name] += 1
    rng.shuffle(picked)
    return picked, dict(used)


# --- embeddings (cached by block under /tmp) ------------------------------------------------------


def block_key(model: str, texts: list[str]) -> str:
    digest = hashlib.sha256(model.encode())
    for text in texts:
        digest.update(b"\x1e" + text.encode())
    return digest.hexdigest()[:32]


class EmbeddingCache:
    """Corpus embeddings in blocks of BLOCK texts: ``emb-<hash>.npy`` + ``.json`` (seconds it took)."""

    def __init__(self, directory: Path, model: str, texts: list[str]) -> None:
        self.dir = directory
        self.model = model
        self.texts = texts
        self.blocks = [texts[i : i + BLOCK] for i in range(0, len(texts), BLOCK)]
        self.keys = [block_key(model, block) for block in self.blocks]
        self.computed_now: list[dict] = []  # blocks embedded in this run

    def _paths(self, i: int) -> tuple[Path, Path]:
        return self.dir / f"emb-{self.keys[i]}.npy", self.dir / f"emb-{self.keys[i]}.json"

    def cached(self, i: int) -> bool:
        npy, meta = self._paths(i)
        return npy.exists() and meta.exists()

    def meta(self, i: int) -> dict:
        return json.loads(self._paths(i)[1].read_text())

    def missing_texts(self, n: int) -> int:
        return sum(len(self.blocks[i]) for i in range(math.ceil(n / BLOCK)) if not self.cached(i))

    def rate_now(self) -> float | None:
        texts = sum(b["texts"] for b in self.computed_now)
        seconds = sum(b["seconds"] for b in self.computed_now)
        return texts / seconds if texts >= BLOCK and seconds > 0 else None

    def embed_block(self, i: int) -> None:
        from knowledge import embeddings

        self.dir.mkdir(parents=True, exist_ok=True)
        clock = Clock()
        vectors = embeddings.embed(self.blocks[i]).astype(np.float32)
        phase = clock.stop()
        npy, meta = self._paths(i)
        tmp = npy.with_suffix(".tmp.npy")
        np.save(tmp, vectors)
        os.replace(tmp, npy)
        info = {
            "texts": len(self.blocks[i]),
            "words": sum(len(t.split()) for t in self.blocks[i]),
            "seconds": phase["wall_s"],
            "cpu_pct": phase["cpu_pct"],
            "loadavg_1m": phase["loadavg_1m"],
            "model": self.model,
            "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        }
        meta.write_text(json.dumps(info))
        self.computed_now.append(info)

    def vectors(self, n: int) -> np.ndarray:
        blocks = [np.load(self._paths(i)[0]) for i in range(math.ceil(n / BLOCK))]
        return np.concatenate(blocks)[:n]

    def summary(self, n: int) -> dict:
        metas = [self.meta(i) for i in range(math.ceil(n / BLOCK)) if self.cached(i)]
        texts = sum(m["texts"] for m in metas)
        seconds = sum(m["seconds"] for m in metas)
        clean = [m for m in metas if m["cpu_pct"] >= 180]  # blocks that had both cores
        clean_rate = sum(m["texts"] for m in clean) / sum(m["seconds"] for m in clean) if clean else None
        return {
            "texts": texts,
            "uncontended_blocks": len(clean),
            "uncontended_texts_per_s": rnd(clean_rate),
            "seconds_when_embedded": round(seconds, 1),
            "texts_per_s": round(texts / seconds, 2) if seconds else None,
            "mean_cpu_pct": rnd(statistics.mean(m["cpu_pct"] for m in metas), 0) if metas else None,
            "max_loadavg_1m": max((m["loadavg_1m"] for m in metas), default=None),
            "embedded_in_this_run": sum(b["texts"] for b in self.computed_now),
            "dates": sorted({m["date"][:10] for m in metas}),
        }


def ensure_embeddings(cache: EmbeddingCache, n: int, max_minutes: float) -> dict:
    """Embed what is missing of the first ``n`` texts, unless the projected time is over the limit.

    The rate is the one measured in this run (after the first block) or, before that, the one recorded
    with the cached blocks; with neither, one block is embedded first to measure it."""
    needed = [i for i in range(math.ceil(n / BLOCK)) if not cache.cached(i)]
    if not needed:
        return {"ok": True}
    log(f"embedding {cache.missing_texts(n):,} texts for N={n:,} (blocks of {BLOCK})")
    for count, i in enumerate(needed, start=1):
        summary = cache.summary(len(cache.texts))
        rates = [r for r in (cache.rate_now(), summary["texts_per_s"], summary["uncontended_texts_per_s"]) if r]
        rate = max(rates) if rates else None  # the optimistic projection: skip only if even that is too long
        remaining = sum(len(cache.blocks[j]) for j in needed[count - 1 :])
        if rate and remaining / rate > max_minutes * 60:
            return {
                "ok": False,
                "rate_texts_per_s": round(rate, 2),
                "remaining_texts": remaining,
                "projected_min": round(remaining / rate / 60, 1),
                "limit_min": max_minutes,
            }
        cache.embed_block(i)
        done = cache.computed_now[-1]
        log(
            f"  block {count}/{len(needed)}: {done['texts']} texts in {done['seconds']:.1f}s "
            f"({done['texts'] / done['seconds']:.1f}/s, CPU {done['cpu_pct']:.0f}%, load {done['loadavg_1m']})"
        )
    return {"ok": True}


# --- loading the knowledge base -------------------------------------------------------------------


def load_knowledge_base(conn, texts: list[str], vectors: np.ndarray, titles: list[str]) -> dict:
    """Articles (Django) + chunks (binary COPY into a staging table, then one INSERT ... SELECT that also
    computes the weighted tsvector the app stores) with the HNSW index dropped. Returns timings."""
    from django.utils import timezone
    from django.utils.text import slugify

    from knowledge import chunking, embeddings
    from knowledge.models import Article
    from knowledge.services import fts_config

    n = len(texts)
    n_articles = min(N_ARTICLES, n)
    members: list[list[int]] = [list(range(a, n, n_articles)) for a in range(n_articles)]
    now = timezone.now()
    clock = Clock()
    articles = []
    offsets: dict[int, tuple[int, int]] = {}
    for a, idx in enumerate(members):
        parts, pos = [], 0
        for j in idx:
            offsets[j] = (pos, pos + len(texts[j]))
            parts.append(texts[j])
            pos += len(texts[j]) + 2
        title = titles[a % len(titles)]
        articles.append(
            Article(
                namespace=NAMESPACE, title=title, slug=f"{slugify(title)[:200] or 'article'}-{a}",
                body="\n\n".join(parts), status=Article.Status.PUBLISHED, published_at=now, indexed_at=now,
                source=Article.Source.UPLOAD, source_name=f"kb-bench-{a}.md",
            )
        )  # fmt: skip
    created = Article.objects.bulk_create(articles, batch_size=200)
    article_ids = [obj.pk for obj in created]
    articles_s = clock.stop()["wall_s"]

    conn.execute(f"DROP INDEX IF EXISTS {INDEX_NAME}")
    conn.execute(
        "CREATE TEMP TABLE kb_stage (article_id bigint, position int, text text, char_start int, char_end int, "
        "token_count int, content_hash varchar(64), embedding vector(384))"
    )
    clock = Clock()
    with (
        conn.transaction(),
        conn.cursor() as cur,
        cur.copy(
            "COPY kb_stage (article_id, position, text, char_start, char_end, token_count, content_hash, embedding) "
            "FROM STDIN WITH (FORMAT BINARY)"
        ) as copy,
    ):
        copy.set_types(["int8", "int4", "text", "int4", "int4", "int4", "varchar", "vector"])
        for j, text in enumerate(texts):
            start, end = offsets[j]
            copy.write_row(
                (
                    article_ids[j % n_articles], j // n_articles, text, start, end, chunking.count_tokens(text),
                    embeddings.content_hash(text), vectors[j],
                )
            )  # fmt: skip
    copy_phase = clock.stop()
    clock = Clock()
    config = fts_config("en")
    with conn.transaction():
        conn.execute(
            "INSERT INTO knowledge_chunk (article_id, namespace, is_public, language, position, heading_path, text, "
            "char_start, char_end, token_count, content_hash, embedding, search_vector) "
            "SELECT s.article_id, %s, true, 'en', s.position, '', s.text, s.char_start, s.char_end, s.token_count, "
            "s.content_hash, s.embedding, setweight(to_tsvector(%s::regconfig, a.title || ' '), 'A') "
            "|| setweight(to_tsvector(%s::regconfig, s.text), 'B') "
            "FROM kb_stage s JOIN knowledge_article a ON a.id = s.article_id ORDER BY s.article_id, s.position",
            [NAMESPACE, config, config],
        )
    insert_phase = clock.stop()
    conn.execute("DROP TABLE kb_stage")
    return {
        "articles": n_articles,
        "articles_s": articles_s,
        "copy_s": copy_phase["wall_s"],
        "insert_select_s": insert_phase["wall_s"],
        "rows_per_s": round(n / (copy_phase["wall_s"] + insert_phase["wall_s"]), 1),
    }


def build_index(conn, indexdef: str, mem: str | None) -> dict:
    """CREATE INDEX (the migration's definition) timed, with the NOTICEs PostgreSQL sends while building."""
    notices: list[str] = []

    def on_notice(diag) -> None:
        notices.append(f"{diag.severity}: {diag.message_primary}")

    conn.execute(f"DROP INDEX IF EXISTS {INDEX_NAME}")
    conn.add_notice_handler(on_notice)
    try:
        with conn.transaction():
            if mem:
                conn.execute(f"SET LOCAL maintenance_work_mem = '{mem}'")
            used_mem = conn.execute("SHOW maintenance_work_mem").fetchone()[0]
            workers = conn.execute("SHOW max_parallel_maintenance_workers").fetchone()[0]
            clock = Clock()
            conn.execute(indexdef)
            phase = clock.stop()
    finally:
        conn.remove_notice_handler(on_notice)
    size = conn.execute("SELECT pg_relation_size(%s::regclass)", [INDEX_NAME]).fetchone()[0]
    return {
        "maintenance_work_mem": used_mem,
        "parallel_workers_max": int(workers),
        "seconds": phase["wall_s"],
        "size_mb": round(size / 2**20, 1),
        "notices": notices,
    }


# --- searching ------------------------------------------------------------------------------------


def search_hnsw(vector_text: str, ef: int, limit: int) -> list[int]:
    """The app's query shape (``chunk_vector_candidates``) with an explicit ef_search."""
    from django.db import connection, transaction

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL hnsw.ef_search = %s", [ef])
        cursor.execute(VECTOR_SQL, [vector_text, NAMESPACE, vector_text, limit])
        return [row[0] for row in cursor.fetchall()]


def search_exact(vector_text: str, limit: int) -> list[int]:
    from django.db import connection, transaction

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_indexscan = off")
        cursor.execute(VECTOR_SQL, [vector_text, NAMESPACE, vector_text, limit])
        return [row[0] for row in cursor.fetchall()]


def search_app(vector: list[float]) -> list[int]:
    from knowledge import selectors

    rows = selectors.chunk_vector_candidates(vector=vector, namespace=NAMESPACE, limit=APP_CANDIDATES)
    return [row[0] for row in rows]


def app_ef() -> int:
    from knowledge.selectors import ef_search

    return ef_search(APP_CANDIDATES)


def explain(config: str, vector_text: str) -> list[str]:
    from django.db import connection, transaction

    from knowledge.selectors import ef_search

    ef = {"app": ef_search(APP_CANDIDATES)}.get(config)
    limit = APP_CANDIDATES if config in ("app", "exact") else K
    with transaction.atomic(), connection.cursor() as cursor:
        if config == "exact":
            cursor.execute("SET LOCAL enable_indexscan = off")
        else:
            cursor.execute("SET LOCAL hnsw.ef_search = %s", [ef or int(config.removeprefix("ef"))])
        cursor.execute(
            "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, TIMING ON) " + VECTOR_SQL,
            [vector_text, NAMESPACE, vector_text, limit],
        )
        return [row[0] for row in cursor.fetchall()]


def run_searches(queries: np.ndarray, ef_values: list[int], warmup: int) -> dict:
    """Every query through every configuration (rotating order per query) -> ids and latencies."""
    texts = [str(q.tolist()) for q in queries]
    lists = [q.tolist() for q in queries]
    configs = ["exact", *[f"ef{ef}" for ef in ef_values], "app"]

    def run(config: str, qi: int) -> list[int]:
        if config == "exact":
            return search_exact(texts[qi], APP_CANDIDATES)
        if config == "app":
            return search_app(lists[qi])
        return search_hnsw(texts[qi], int(config.removeprefix("ef")), K)

    for config in configs:  # warm-up: caches, plans, the connection
        for qi in range(min(warmup if config != "exact" else 3, len(texts))):
            run(config, qi)
    ids: dict[str, list[list[int]]] = {c: [] for c in configs}
    latency: dict[str, list[float]] = {c: [] for c in configs}
    for qi in range(len(texts)):
        shift = qi % len(configs)
        for config in configs[shift:] + configs[:shift]:
            t0 = time.perf_counter()
            got = run(config, qi)
            latency[config].append((time.perf_counter() - t0) * 1000.0)
            ids[config].append(got)
    plans = {config: explain(config, texts[0]) for config in configs}
    return {"configs": configs, "ids": ids, "latency_ms": latency, "plans": plans}


def plan_summary(lines: list[str]) -> dict:
    text = "\n".join(lines)
    buffers = re.search(r"Buffers: shared hit=(\d+)(?: read=(\d+))?", text)
    execution = re.search(r"Execution Time: ([\d.]+) ms", text)
    node = next((ln.strip().lstrip("-> ").strip() for ln in lines if "Scan" in ln), lines[0] if lines else "")
    node = node.split("  (")[0].split(" (actual")[0]
    return {
        "uses_hnsw": INDEX_NAME in text,
        "scan": node[:120],
        "shared_hit": int(buffers.group(1)) if buffers else None,
        "shared_read": int(buffers.group(2)) if buffers and buffers.group(2) else 0,
        "execution_ms": float(execution.group(1)) if execution else None,
    }


def evaluate_size(n, ids_by_hash, vectors, query_set, searched) -> dict:
    """Recall against the exact top-k, how much similarity the misses cost, latency percentiles, recall by
    query source, the worst queries, and the numpy cross-check of the exact search."""
    texts, labels, queries = query_set
    exact = searched["ids"]["exact"]
    truth10 = [set(row[:K]) for row in exact]
    truth50 = [set(row[:APP_CANDIDATES]) for row in exact]
    scores = queries @ vectors[:n].T  # cosine: the vectors are normalised
    index_of = {chunk_id: j for j, chunk_id in enumerate(ids_by_hash)}
    top = np.argsort(-scores, axis=1)[:, :K]  # numpy brute force, mapped to chunk ids by content hash
    numpy_agree = statistics.mean(
        len({ids_by_hash[j] for j in top[qi]} & truth10[qi]) / K for qi in range(len(queries))
    )
    true_sim = [float(np.mean([scores[qi, index_of[c]] for c in exact[qi][:K]])) for qi in range(len(queries))]
    rows, per_query = {}, {}
    for config in searched["configs"]:
        lat = searched["latency_ms"][config]
        got = searched["ids"][config]
        recall = [len(set(g[:K]) & t) / K for g, t in zip(got, truth10, strict=True)]
        loss = [
            true_sim[qi] - float(np.mean([scores[qi, index_of[c]] for c in got[qi][:K]])) if got[qi] else 1.0
            for qi in range(len(queries))
        ]
        per_query[config] = recall
        row = {
            "recall_at_10": round(statistics.mean(recall), 4),
            "recall_min": round(min(recall), 2),
            "queries_below_0_9": sum(1 for r in recall if r < 0.9),
            "cos_loss_mean": round(statistics.mean(loss), 4),
            "cos_loss_max": round(max(loss), 4),
            "recall_by_source": {
                src: round(statistics.mean(r for r, lab in zip(recall, labels, strict=True) if lab == src), 3)
                for src in sorted(set(labels))
            },
            "p50_ms": rnd(percentile(lat, 50)),
            "p95_ms": rnd(percentile(lat, 95)),
            "p99_ms": rnd(percentile(lat, 99)),
            "mean_ms": rnd(statistics.mean(lat)),
            "short_results": sum(1 for g in got if len(g) < K),
            "plan": plan_summary(searched["plans"][config]),
        }
        if config == "app":
            recall50 = [len(set(g) & t) / APP_CANDIDATES for g, t in zip(got, truth50, strict=True)]
            row["recall_at_50"] = round(statistics.mean(recall50), 4)
            row["ef_search"] = app_ef()
            row["limit"] = APP_CANDIDATES
        elif config == "exact":
            row["limit"] = APP_CANDIDATES
        else:
            row["ef_search"] = int(config.removeprefix("ef"))
            row["limit"] = K
        row["meets_target"] = (
            config != "exact" and row["recall_at_10"] >= RECALL_TARGET and row["p95_ms"] <= P95_TARGET_MS
        )
        rows[config] = row
    hnsw_configs = [c for c in searched["configs"] if c != "exact"]
    worst = sorted(range(len(queries)), key=lambda qi: (per_query["app"][qi], per_query[hnsw_configs[0]][qi]))[:5]
    return {
        "n": n,
        "exact_vs_numpy_top10_agreement": round(numpy_agree, 4),
        "results": rows,
        "worst_queries": [
            {
                "query": texts[qi],
                "source": labels[qi],
                "true_top10_mean_cos": round(true_sim[qi], 3),
                "true_top1_cos": round(float(scores[qi, index_of[exact[qi][0]]]), 3),
                "recall": {c: per_query[c][qi] for c in hnsw_configs},
            }
            for qi in worst
        ],
        "median_true_top10_cos_by_source": {
            src: round(statistics.median(t for t, lab in zip(true_sim, labels, strict=True) if lab == src), 3)
            for src in sorted(set(labels))
        },
        "plans": searched["plans"],
    }


def run_size(n, env, cache, corpus, query_set, titles, args) -> dict:
    from django.db import connection

    query_texts, query_labels, queries_vec = query_set
    close_django_connections()
    log(f"N={n:,}: recreating {BENCH_DB_NAME} and migrating")
    migrate_s = recreate_and_migrate(env)
    vectors = cache.vectors(n)
    with raw_connect(env) as conn:
        indexdef = conn.execute("SELECT indexdef FROM pg_indexes WHERE indexname = %s", [INDEX_NAME]).fetchone()
        if indexdef is None:
            raise RuntimeError(f"{INDEX_NAME} is missing after migrate: the migrations changed")
        indexdef = indexdef[0]
        log(f"N={n:,}: loading chunks (index dropped); index definition: {indexdef}")
        load = load_knowledge_base(conn, corpus[:n], vectors, titles)
        load["migrate_s"] = round(migrate_s, 1)
        log(
            f"N={n:,}: {load['articles']} articles {load['articles_s']:.1f}s, COPY {load['copy_s']:.1f}s, "
            f"INSERT..SELECT (+tsvector) {load['insert_select_s']:.1f}s"
        )
        builds = []
        if args.compare_build_mem:
            builds.append({"role": "comparison", **build_index(conn, indexdef, args.compare_build_mem)})
            log(
                f"N={n:,}: index build at {args.compare_build_mem}: {builds[-1]['seconds']:.1f}s "
                f"{builds[-1]['notices']}"
            )
        builds.append({"role": "used for the searches (server default, as the migration builds it)",
                       **build_index(conn, indexdef, None)})  # fmt: skip
        log(f"N={n:,}: index build at server default: {builds[-1]['seconds']:.1f}s {builds[-1]['notices']}")
        clock = Clock()
        conn.execute("VACUUM ANALYZE knowledge_chunk")
        conn.execute("VACUUM ANALYZE knowledge_article")
        vacuum_s = clock.stop()["wall_s"]
        count = conn.execute("SELECT count(*) FROM knowledge_chunk WHERE is_public AND namespace = %s", [NAMESPACE])
        if count.fetchone()[0] != n:
            raise RuntimeError("the chunk count in the database is not N")
        sizes_mb = {
            "table_total": round(
                conn.execute("SELECT pg_total_relation_size('knowledge_chunk')").fetchone()[0] / 2**20
            ),
            "table_heap": round(conn.execute("SELECT pg_relation_size('knowledge_chunk')").fetchone()[0] / 2**20),
            "hnsw_index": round(
                conn.execute("SELECT pg_relation_size(%s::regclass)", [INDEX_NAME]).fetchone()[0] / 2**20
            ),
        }
        toast = conn.execute(
            "SELECT pg_relation_size(reltoastrelid) FROM pg_class WHERE relname = 'knowledge_chunk'"
        ).fetchone()[0]
        sizes_mb["toast"] = round(toast / 2**20)
        storage = conn.execute(
            "SELECT attstorage FROM pg_attribute WHERE attrelid = 'knowledge_chunk'::regclass AND attname = 'embedding'"
        ).fetchone()[0]
        row_bytes = conn.execute(
            "SELECT avg(pg_column_size(c.*))::int, avg(pg_column_size(embedding))::int FROM knowledge_chunk c"
        ).fetchone()
        storage_facts = {
            "embedding_attstorage": storage,
            "avg_row_bytes": row_bytes[0],
            "avg_embedding_bytes": row_bytes[1],
        }
        hashes = dict(conn.execute("SELECT content_hash, id FROM knowledge_chunk").fetchall())
    from knowledge import embeddings

    ids_by_hash = [hashes[embeddings.content_hash(text)] for text in corpus[:n]]
    log(f"N={n:,}: searching {len(queries_vec)} queries (exact, ef_search {args.ef_list}, app call)")
    clock = Clock()
    searched = run_searches(queries_vec, args.ef_list, args.warmup)
    search_phase = clock.stop()
    connection.close()
    result = evaluate_size(n, ids_by_hash, vectors, (query_texts, query_labels, queries_vec), searched)
    result.update(load=load, index_builds=builds, vacuum_analyze_s=vacuum_s, sizes_mb=sizes_mb, storage=storage_facts)
    result["search_phase"] = search_phase
    for config, row in result["results"].items():
        log(
            f"  {config:>6}: recall@10 {row['recall_at_10']:.3f} p50 {fmt(row['p50_ms'], 2, grouped=True)} ms "
            f"p95 {fmt(row['p95_ms'], 2, grouped=True)} ms  hnsw={row['plan']['uses_hnsw']}"
        )
    return result


# --- ingestion ------------------------------------------------------------------------------------


def make_ingest_files(texts: list[str], titles: list[str], n_articles: int, seed: int) -> list[tuple[str, bytes]]:
    rng = random.Random(seed + 11)
    per = [texts[a::n_articles] for a in range(n_articles)]
    files = []
    for a, paragraphs in enumerate(per):
        headings = rng.sample(HEADINGS, k=min(len(HEADINGS), max(1, math.ceil(len(paragraphs) / 4))))
        lines = [f"# {titles[a % len(titles)]}", ""]
        for s, heading in enumerate(headings):
            lines += [f"## {heading}", ""]
            for paragraph in paragraphs[s :: len(headings)]:
                lines += [paragraph, ""]
        files.append((f"kbbench-ingest-{a:04d}.md", "\n".join(lines).encode()))
    return files


def app_embedding_texts(files: list[tuple[str, bytes]]) -> list[str]:
    """Exactly the texts ``article_reindex`` embeds for these files: title, heading path, chunk text."""
    from knowledge import chunking
    from knowledge.ingest import parse

    out = []
    for name, data in files:
        document = parse(name, data)
        title = " ".join(document.title.split())[:255]
        for piece in chunking.chunk_markdown(document.body.replace("\x00", "")):
            out.append("\n".join(part for part in (title, piece.heading_path, piece.text) if part))
    return out


def truncate_knowledge() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE knowledge_chunk, knowledge_article, knowledge_category RESTART IDENTITY CASCADE")


def run_ingestion(texts: list[str], titles: list[str], args) -> dict:
    """App path vs bare encode, interleaved finely: the files are split into groups, and every repeat runs
    each group through both (order alternating by group and repeat), so a load change on the shared
    machine hits both sides alike. The knowledge tables are truncated before every app unit."""
    from knowledge import embeddings, services
    from knowledge.models import Article, Chunk

    files = make_ingest_files(texts, titles, args.ingest_articles, args.seed)
    n_groups = max(1, min(args.ingest_groups, len(files)))
    groups = [files[g::n_groups] for g in range(n_groups)]
    group_texts = [app_embedding_texts(group) for group in groups]
    n_chunks = sum(len(t) for t in group_texts)
    model = embeddings.get_model()
    embed_seconds = [0.0]
    original_embed = embeddings.embed

    def timed_embed(batch, **kwargs):  # measures the model's share of the app path; same call underneath
        t0 = time.perf_counter()
        try:
            return original_embed(batch, **kwargs)
        finally:
            embed_seconds[0] += time.perf_counter() - t0

    def app_unit(g: int) -> dict:
        truncate_knowledge()  # nothing for the content-hash reuse to find
        embed_seconds[0] = 0.0
        embeddings.embed = timed_embed
        try:
            clock = Clock()
            report = services.ingest_files(groups[g], default_status=Article.Status.PUBLISHED)
            phase = clock.stop()
        finally:
            embeddings.embed = original_embed
        stored = list(Chunk.objects.values_list("content_hash", flat=True))
        complete = Chunk.objects.filter(is_public=True, embedding__isnull=False, search_vector__isnull=False).count()
        return {
            **phase,
            "chunks": len(stored),
            "embedded": report.embedded,
            "failed": report.failed,
            "public_complete_chunks": complete,
            "embed_s": round(embed_seconds[0], 3),
            "same_texts_as_bare": Counter(stored) == Counter(embeddings.content_hash(t) for t in group_texts[g]),
        }

    def bare_unit(g: int) -> dict:
        clock = Clock()
        vectors = model.encode(
            group_texts[g], batch_size=embeddings.BATCH_SIZE, normalize_embeddings=True, convert_to_numpy=True,
            show_progress_bar=False,
        )  # fmt: skip
        return {**clock.stop(), "chunks": len(vectors)}

    log(f"ingestion: {len(files)} files in {n_groups} groups, {len(texts)} paragraphs -> {n_chunks} chunks; warm-up")
    warm = services.ingest_files(files[:2], default_status=Article.Status.PUBLISHED)  # ORM, connection, model
    if warm.failed:
        raise RuntimeError(f"ingestion warm-up failed: {warm.failed}")
    model.encode(group_texts[0][:64], batch_size=embeddings.BATCH_SIZE, show_progress_bar=False)
    units: list[dict] = []
    repeats: list[dict] = []
    for rep in range(args.repeats):
        mine = []
        for g in range(n_groups):
            order = ("app", "bare") if (rep + g) % 2 == 0 else ("bare", "app")
            for variant in order:
                result = app_unit(g) if variant == "app" else bare_unit(g)
                result.update(variant=variant, repeat=rep, group=g)
                if variant == "app" and (
                    result["failed"] or result["embedded"] != result["chunks"] or not result["same_texts_as_bare"]
                ):
                    raise RuntimeError(f"app ingestion did not embed every chunk of the bare texts: {result}")
                mine.append(result)
        units += mine
        app = [u for u in mine if u["variant"] == "app"]
        bare = [u for u in mine if u["variant"] == "bare"]
        app_s, bare_s = sum(u["wall_s"] for u in app), sum(u["wall_s"] for u in bare)
        summary = {
            "repeat": rep,
            "chunks": sum(u["chunks"] for u in app),
            "app_s": round(app_s, 2),
            "app_model_s": round(sum(u["embed_s"] for u in app), 2),
            "app_cpu_pct": round(100 * sum(u["cpu_s"] for u in app) / app_s, 0),
            "bare_s": round(bare_s, 2),
            "bare_cpu_pct": round(100 * sum(u["cpu_s"] for u in bare) / bare_s, 0),
            "app_chunks_per_s": round(sum(u["chunks"] for u in app) / app_s, 2),
            "bare_chunks_per_s": round(sum(u["chunks"] for u in bare) / bare_s, 2),
            "ratio": round(bare_s / app_s, 3),
            "max_loadavg_1m": max(u["loadavg_1m"] for u in mine),
        }
        repeats.append(summary)
        log(
            f"  #{rep + 1}: app {summary['app_chunks_per_s']:.1f} chunks/s ({summary['app_s']:.1f}s, model "
            f"{summary['app_model_s']:.1f}s, CPU {summary['app_cpu_pct']:.0f}%), "
            f"bare {summary['bare_chunks_per_s']:.1f} chunks/s ({summary['bare_s']:.1f}s, "
            f"CPU {summary['bare_cpu_pct']:.0f}%), ratio {summary['ratio']:.3f}, "
            f"load up to {summary['max_loadavg_1m']}"
        )
    truncate_knowledge()
    ratio = statistics.median(r["ratio"] for r in repeats)
    return {
        "files": len(files),
        "groups": n_groups,
        "paragraphs": len(texts),
        "chunks": n_chunks,
        "mean_words_per_chunk": round(statistics.mean(len(t.split()) for g in group_texts for t in g), 1),
        "repeats": repeats,
        "units": units,
        "app_chunks_per_s": round(statistics.median(r["app_chunks_per_s"] for r in repeats), 2),
        "bare_chunks_per_s": round(statistics.median(r["bare_chunks_per_s"] for r in repeats), 2),
        "ratio": round(ratio, 3),
        "app_s": round(statistics.median(r["app_s"] for r in repeats), 2),
        "app_model_s": round(statistics.median(r["app_model_s"] for r in repeats), 2),
        "app_other_s": round(statistics.median(r["app_s"] - r["app_model_s"] for r in repeats), 2),
        "bare_s": round(statistics.median(r["bare_s"] for r in repeats), 2),
        "contended_repeats": sum(1 for r in repeats if r["bare_cpu_pct"] < 170),
        "meets_target": ratio >= INGEST_RATIO_TARGET,
    }


# --- report ---------------------------------------------------------------------------------------


def label(config: str) -> str:
    if config == "exact":
        return f"exact (enable_indexscan=off, LIMIT {APP_CANDIDATES})"
    if config == "app":
        return f"app `chunk_vector_candidates` (ef_search {app_ef()}, LIMIT {APP_CANDIDATES})"
    return f"HNSW ef_search={config.removeprefix('ef')} (LIMIT {K})"


def search_table(sizes_done: list[dict]) -> str:
    lines = [
        "| N | search | recall@10 | min recall | queries < 0.9 | cos loss mean / max | p50 ms | p95 ms | p99 ms | "
        "index used | target met |",
        "|---:|---|---:|---:|---:|---|---:|---:|---:|---|---|",
    ]
    for size in sizes_done:
        for config, row in size["results"].items():
            met = "–" if config == "exact" else ("yes" if row["meets_target"] else "no")
            recall = f"{row['recall_at_10']:.3f}"
            if config == "app":
                recall += f" (top-50: {row['recall_at_50']:.3f})"
            lines.append(
                f"| {size['n']:,} | {label(config)} | {recall} | {row['recall_min']:.1f} | "
                f"{row['queries_below_0_9']} | {row['cos_loss_mean']:.4f} / {row['cos_loss_max']:.3f} | "
                f"{fmt(row['p50_ms'], 2, grouped=True)} | {fmt(row['p95_ms'], 2, grouped=True)} | "
                f"{fmt(row['p99_ms'], 2, grouped=True)} | "
                f"{'HNSW' if row['plan']['uses_hnsw'] else 'no (' + row['plan']['scan'][:40] + ')'} | {met} |"
            )
    return "\n".join(lines)


def load_table(sizes_done: list[dict]) -> str:
    lines = [
        "| N | COPY s | INSERT…SELECT (+tsvector) s | index build s (maintenance_work_mem) | index MB | "
        "table MB (total) | VACUUM ANALYZE s | exact = numpy top-10 |",
        "|---:|---:|---:|---|---:|---:|---:|---:|",
    ]
    for size in sizes_done:
        builds = "; ".join(
            f"{b['seconds']:.1f} ({b['maintenance_work_mem']}{', spilled' if b['notices'] else ''})"
            for b in size["index_builds"]
        )
        lines.append(
            f"| {size['n']:,} | {size['load']['copy_s']:.1f} | {size['load']['insert_select_s']:.1f} | {builds} | "
            f"{size['sizes_mb']['hnsw_index']} | {size['sizes_mb']['table_total']} | {size['vacuum_analyze_s']:.1f} | "
            f"{size['exact_vs_numpy_top10_agreement']:.3f} |"
        )
    return "\n".join(lines)


def ingest_table(ing: dict) -> str:
    lines = [
        "| repeat | chunks | app s (model / other) | app chunks/s | bare encode s | bare chunks/s | app / bare | "
        "bench CPU % app / bare | load avg max |",
        "|---:|---:|---|---:|---:|---:|---:|---|---:|",
    ]
    for r in ing["repeats"]:
        lines.append(
            f"| {r['repeat'] + 1} | {r['chunks']:,} | {r['app_s']:.1f} ({r['app_model_s']:.1f} / "
            f"{r['app_s'] - r['app_model_s']:.1f}) | {r['app_chunks_per_s']:.1f} | {r['bare_s']:.1f} | "
            f"{r['bare_chunks_per_s']:.1f} | {r['ratio']:.2f} | {r['app_cpu_pct']:.0f} / {r['bare_cpu_pct']:.0f} | "
            f"{r['max_loadavg_1m']} |"
        )
    lines.append(
        f"| median | | {ing['app_s']:.1f} ({ing['app_model_s']:.1f} / {ing['app_other_s']:.1f}) | "
        f"{ing['app_chunks_per_s']:.1f} | {ing['bare_s']:.1f} | {ing['bare_chunks_per_s']:.1f} | "
        f"**{ing['ratio']:.2f}** | | |"
    )
    return "\n".join(lines)


def best_meeting(size: dict) -> str | None:
    for config, row in size["results"].items():
        if config.startswith("ef") and row["meets_target"]:
            return config
    return None


def verdicts(sizes_done: list[dict], skipped: list[dict], ingestion: dict | None) -> list[str]:
    out = []
    target = next((s for s in sizes_done if s["n"] == TARGET_SIZE), None)
    if target is None:
        why = next((s for s in skipped if s["n"] == TARGET_SIZE), None)
        reason = (
            f"skipped: embedding the {why['remaining_texts']:,} uncached texts was projected at "
            f"{why['projected_min']} min "
            f"({why['rate_texts_per_s']} texts/s) against a limit of {why['limit_min']:g} min"
            if why
            else "not in --sizes"
        )
        out.append(
            f"- Recall ≥ {RECALL_TARGET} at p95 ≤ {P95_TARGET_MS:g} ms at N={TARGET_SIZE:,}: "
            f"**not measured** ({reason})."
        )
    for size in sizes_done:
        best = best_meeting(size)
        app = size["results"]["app"]
        prefix = f"- N={size['n']:,}" + (" (target size)" if size["n"] == TARGET_SIZE else " (below the target size)")
        if best:
            row = size["results"][best]
            out.append(
                f"{prefix}: recall ≥ {RECALL_TARGET} at p95 ≤ {P95_TARGET_MS:g} ms **met** from ef_search="
                f"{best.removeprefix('ef')} (recall {row['recall_at_10']:.3f}, p95 {row['p95_ms']:.2f} ms)."
            )
        else:
            out.append(
                f"{prefix}: recall ≥ {RECALL_TARGET} at p95 ≤ {P95_TARGET_MS:g} ms **not met** at any ef_search tried."
            )
        out.append(
            f"  The app's current call (ef_search {app['ef_search']}, LIMIT {app['limit']}): recall@10 "
            f"{app['recall_at_10']:.3f}, p95 {app['p95_ms']:.2f} ms → "
            f"**{'meets' if app['meets_target'] else 'does not meet'}** it."
        )
    if ingestion:
        out.append(
            f"- Ingestion at ≥ {INGEST_RATIO_TARGET} of bare `model.encode`: "
            f"**{'met' if ingestion['meets_target'] else 'NOT met'}** "
            f"(app {ingestion['app_chunks_per_s']:.1f} chunks/s vs bare {ingestion['bare_chunks_per_s']:.1f} chunks/s, "
            f"ratio {ingestion['ratio']:.2f})."
        )
    return out


def observations(sizes_done, skipped, ingestion, embed_summary, facts) -> list[str]:
    notes = []
    clean, average = embed_summary.get("uncontended_texts_per_s"), embed_summary.get("texts_per_s")
    if clean:
        notes.append(
            f"- Embedding dominates every write path: the model does {clean:.1f} texts/s "
            f"(mean {embed_summary['mean_words']:.0f} words) with both cores to itself, so 100,000 chunks take "
            f"≈ {100_000 / clean / 60:.0f} min of model time on this machine; averaged over all the cached blocks "
            f"(some shared the cores with other processes) it was {average} texts/s "
            f"(≈ {100_000 / average / 60:.0f} min per 100,000)."
        )
    elif average:
        notes.append(
            f"- Embedding dominates every write path: {average:.1f} texts/s (mean {embed_summary['mean_words']:.0f} "
            f"words; no block had both cores to itself) → ≈ {100_000 / average / 60:.0f} min per 100,000 chunks."
        )
    for s in skipped:
        notes.append(
            f"- N={s['n']:,} skipped, not shrunk: {s['remaining_texts']:,} texts still to embed at "
            f"{s['rate_texts_per_s']} texts/s (the best rate seen) ≈ {s['projected_min']} min > "
            f"--max-embed-minutes {s['limit_min']:g}. Fill the cache once with "
            f"`--embed-only --sizes {s['n']} --max-embed-minutes {math.ceil(s['projected_min'] * 1.2)}`, then re-run."
        )
    for size in sizes_done:
        for build in size["index_builds"]:
            if build["notices"]:
                notes.append(
                    f"- N={size['n']:,}: the HNSW build at maintenance_work_mem={build['maintenance_work_mem']} "
                    f"spilled ({'; '.join(build['notices'])[:200]}) and took {build['seconds']:.1f} s."
                )
        not_index = [c for c, r in size["results"].items() if c != "exact" and not r["plan"]["uses_hnsw"]]
        if not_index:
            notes.append(f"- N={size['n']:,}: the planner did NOT use the HNSW index for {', '.join(not_index)}.")
        short = [c for c, r in size["results"].items() if r["short_results"]]
        if short:
            notes.append(f"- N={size['n']:,}: fewer than {K} rows returned by {', '.join(short)}.")
        first = next(c for c in size["results"] if c.startswith("ef"))
        by_source = ", ".join(
            f"{src} {size['results'][first]['recall_by_source'][src]:.3f} / "
            f"{size['results']['app']['recall_by_source'][src]:.3f} (median true top-10 cos {cos:.2f})"
            for src, cos in size["median_true_top10_cos_by_source"].items()
        )
        notes.append(
            f"- N={size['n']:,}: recall@10 by query source at ef_search={first.removeprefix('ef')} / at the app's "
            f"call: {by_source}."
        )
        worst = "; ".join(
            f"“{w['query'][:70]}” ({w['source']}, true top-10 cos {w['true_top10_mean_cos']:.2f}, recall "
            + "/".join(f"{r:.1f}" for r in w["recall"].values())
            + ")"
            for w in size["worst_queries"][:3]
        )
        notes.append(
            f"- N={size['n']:,}: worst queries at the app's call (recall at "
            f"{'/'.join(c.removeprefix('ef') for c in size['worst_queries'][0]['recall'])}): {worst}."
        )
        exact = size["results"]["exact"]
        st, mb = size["storage"], size["sizes_mb"]
        hits = (exact["plan"]["shared_hit"] or 0) + (exact["plan"]["shared_read"] or 0)
        notes.append(
            f"- N={size['n']:,}: exact search p95 {exact['p95_ms']:.1f} ms ({exact['plan']['scan']}, "
            f"{hits:,} buffer accesses for {size['n']:,} rows = {hits / size['n']:.1f} per row). A chunk row averages "
            f"{st['avg_row_bytes']:,} bytes, over the ~2 kB TOAST threshold; the embedding "
            f"({st['avg_embedding_bytes']:,} bytes, storage "
            f"{'EXTERNAL' if st['embedding_attstorage'] == 'e' else st['embedding_attstorage']}) ends up out of "
            f"line: heap {mb['table_heap']} MB, TOAST {mb['toast']} MB. Every exact (non-index) "
            "distance computation therefore fetches the vector through the TOAST index — the path the app uses for "
            "non-public namespaces, which it searches exactly. The HNSW index keeps its own copy of the vectors."
        )
    if ingestion:
        notes.append(
            f"- Ingestion (medians over repeats, {ingestion['chunks']:,} chunks): the app takes "
            f"{ingestion['app_s']:.1f} s, of which {ingestion['app_model_s']:.1f} s inside the model and "
            f"{ingestion['app_other_s']:.1f} s for everything else (parse, article saves and slug checks, hash "
            "lookups, bulk insert into the HNSW-indexed table, tsvector UPDATE, commits); bare encode of the same "
            f"texts takes {ingestion['bare_s']:.1f} s."
        )
        if ingestion["contended_repeats"]:
            notes.append(
                f"- {ingestion['contended_repeats']} of {len(ingestion['repeats'])} ingestion repeats ran while other "
                "processes used a core (bare encode below 170% CPU); the fine interleaving keeps the ratio fair, the "
                "absolute chunks/s are lower than on an idle machine."
            )
    return notes


def docs_section(args, meta, corpus_info, embed_summary, sizes_done, skipped, ingestion, verdict, notes) -> str:
    command = (
        "python -m supportflow.devservices exec -- .venv/bin/python bench/kb_bench.py "
        f"--sizes {','.join(map(str, args.sizes_list))} --queries {args.queries}"
    )
    facts = meta["postgres"]
    words = corpus_info["words"]
    clean = (
        f"; the {embed_summary['uncontended_blocks']} blocks that had both cores (≥ 180% CPU) ran at "
        f"{embed_summary['uncontended_texts_per_s']} texts/s"
        if embed_summary.get("uncontended_blocks")
        else ""
    )
    embed_line = (
        f"{embed_summary['texts']:,} corpus texts took {embed_summary['seconds_when_embedded']:,.0f} s "
        f"({embed_summary['texts_per_s']} texts/s, bench process CPU {embed_summary['mean_cpu_pct']:.0f}% on average, "
        f"200% = both cores, load average up to {embed_summary['max_loadavg_1m']}{clean}; embedded "
        f"{', '.join(embed_summary['dates'])}, {embed_summary['embedded_in_this_run']:,} of them in this run, the rest "
        "read from the cache)"
        if embed_summary.get("texts")
        else "nothing embedded"
    )
    busy = f" Other busy processes seen: {'; '.join(meta['other_busy'])}." if meta["other_busy"] else ""
    query_mix = ", ".join(f"{v} {k}" for k, v in corpus_info["query_sources"].items())
    ing = ""
    if ingestion:
        ing = f"""### Ingestion throughput

{ingestion["paragraphs"]:,} corpus texts (the first of the vector corpus) as {ingestion["files"]} markdown files (a
title, up to {len(HEADINGS)} section headings, one paragraph per text) → {ingestion["chunks"]:,} chunks
({ingestion["mean_words_per_chunk"]} words each on average, title and heading path included).
*App* = `knowledge.services.ingest_files(files, default_status="published")`: parse, save the article (slug check),
chunk, hash, look up reusable embeddings, embed what is missing (one call per article, batch 64), bulk insert into
the HNSW-indexed `knowledge_chunk`, tsvector UPDATE, commit. *Bare* = `model.encode` (batch 64, normalised) of
exactly the texts the app embeds. The files are split into {ingestion["groups"]} groups; each of the {args.repeats}
repeats runs every group through both, the order alternating by group and repeat, so load from other processes
hits both sides alike. **Reuse cache:** the knowledge tables are truncated before every app unit, so the
content-hash lookup finds nothing; every app unit is checked to have embedded as many texts as it stored chunks,
and the multiset of stored content hashes to equal that of the bare texts. The ingest goes into an empty knowledge
base, so the HNSW inserts are into a small graph. *Model* = the time spent inside `knowledge.embeddings.embed`
during the app units (timed by wrapping that function in the bench process, not in the app); *bench CPU %* = this
process's CPU time over wall time (200% = both cores; lower means other processes took a share).

{ingest_table(ingestion)}
"""
    return f"""{SECTION_HEADING}

What it measures: nearest-neighbour search over knowledge-base chunks as `kb_search` runs it (pgvector HNSW,
cosine, the partial index `{INDEX_NAME}` over `is_public` rows) against an exact search — recall@10 and
latency at several `hnsw.ef_search` values and at the app's own setting — and how fast the app ingests
documents compared with the bare embedding model.

Reproduce (from the repository root; the embedded PostgreSQL and Redis are started or reused):

```sh
{command}
```

- **Run:** {meta["date"]}, Python {meta["python"]}, PostgreSQL {facts["server_version"]}, pgvector {facts["pgvector"]},
  torch {meta["torch"]} (CPU, {meta["torch_threads"]} threads), sentence-transformers {meta["sentence_transformers"]},
  model `{meta["model"]}` (384 dimensions, normalised). Whole run: {meta["bench_minutes"]} min.
- **Machine:** {meta["cpus"]} cores ({meta["cpu_model"]}), {meta["mem_gb"]} GB RAM; the bench process, the model and
  PostgreSQL share the cores. Load average at the end: {meta["loadavg_end"]}.{busy}
- **PostgreSQL settings** (the shared dev server, unchanged): shared_buffers {facts["shared_buffers"]},
  maintenance_work_mem {facts["maintenance_work_mem"]}, max_parallel_maintenance_workers
  {facts["max_parallel_maintenance_workers"]}, max_parallel_workers_per_gather
  {facts["max_parallel_workers_per_gather"]}, work_mem {facts["work_mem"]}, fsync {facts["fsync"]},
  synchronous_commit {facts["synchronous_commit"]}, jit {facts["jit"]}.
- **Isolation:** its own database `{BENCH_DB_NAME}`, dropped and recreated for each size and dropped at the end.
- **Corpus:** {corpus_info["distinct"]:,} distinct texts of {words["min"]}–{words["max"]} words (mean {words["mean"]}),
  built at run time from {", ".join(f"{v:,} {k}" for k, v in corpus_info["sources"].items())} (runs of sentences of one
  paragraph continued with paragraphs of the same category, placeholders filled with varied values; the first
  10,000 of the 100,000 are the 10,000 set). Loaded as public chunks (namespace `default`) of {N_ARTICLES} published
  articles; the embedded text is the chunk text. Embedding: {embed_line}.
- **Queries:** {meta["queries"]} user questions, none of them a corpus text: {query_mix}.
- **Load:** COPY (binary) into a staging table, then one INSERT…SELECT into `knowledge_chunk` that also computes
  the weighted tsvector, with `{INDEX_NAME}` dropped; then the index is recreated from its migration definition
  (`m = 16, ef_construction = 64`, `WHERE is_public`) — first at maintenance_work_mem {args.compare_build_mem or "–"}
  for comparison, then at the server default, which is the index searched — and `VACUUM ANALYZE`.
- **Searches:** the app's SQL (`WHERE is_public AND namespace = 'default' AND embedding IS NOT NULL ORDER BY embedding
  <=> q LIMIT n`) through Django's connection, in a transaction with `SET LOCAL hnsw.ef_search`, as
  `chunk_vector_candidates` does; exact = the same query with `SET LOCAL enable_indexscan = off` (its top 10 agree
  with a numpy brute force over the same vectors, see the load table). The app's own call
  `chunk_vector_candidates(limit={APP_CANDIDATES})` is what `kb_search` runs with its default `candidates=50`:
  ef_search = selectors.ef_search(50) = {app_ef()}, LIMIT 50; its first 10 are compared with the true top 10 and all
  50 with the true top 50. *Min recall* / *queries < 0.9* are per query; *cos loss* = the mean cosine similarity of
  the true top 10 minus that of the 10 returned, per query (mean and worst): what the misses cost (0 = replaced by
  equally similar chunks). {args.warmup} warm-up queries per configuration, then every query through every
  configuration in a rotating order. Latency is client-side (BEGIN, SET LOCAL, query, fetch, COMMIT). pgvector 0.6 has
  no iterative index scan: an HNSW scan returns at most ef_search rows and any WHERE clause is applied after it. Here
  the filter is the index predicate (`is_public`) plus `namespace = 'default'`, which every public row satisfies, so
  no row is filtered out after the scan.

{load_table(sizes_done) if sizes_done else "(no size was measured)"}

{search_table(sizes_done) if sizes_done else ""}

{ing}
### Targets

{chr(10).join(verdict)}

### Notes from this run

{chr(10).join(notes)}

The JSON line the script prints last has every figure, the EXPLAIN (ANALYZE, BUFFERS) plans and the per-run timings.
"""


# --- main -----------------------------------------------------------------------------------------


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000", help="comma-separated chunk counts")
    parser.add_argument("--queries", type=int, default=200, help="user questions to search")
    parser.add_argument("--ef", default="40,64,100,200", help="hnsw.ef_search values to try")
    parser.add_argument("--warmup", type=int, default=20, help="warm-up queries per configuration")
    parser.add_argument("--ingest-texts", type=int, default=2000, help="corpus texts to ingest through the app")
    parser.add_argument("--ingest-articles", type=int, default=200, help="files (articles) they are spread over")
    parser.add_argument("--ingest-groups", type=int, default=10, help="file groups alternated app/bare per repeat")
    parser.add_argument("--repeats", type=int, default=3, help="alternating app/bare ingestion repeats")
    parser.add_argument("--no-ingest", action="store_true", help="skip the ingestion part")
    parser.add_argument(
        "--compare-build-mem", default="1GB", help="also build the index at this maintenance_work_mem ('' = no)"
    )
    parser.add_argument(
        "--max-embed-minutes", type=float, default=20.0, help="skip a size whose missing embeddings would take longer"
    )
    parser.add_argument(
        "--embed-only", action="store_true", help="only fill the embedding cache for --sizes, then exit"
    )
    parser.add_argument(
        "--embed-probe", type=int, default=0, help="embed this many texts spread over the corpus, print the rate, exit"
    )
    parser.add_argument("--data", default=str(DEFAULT_DATA), help="the datasets folder")
    parser.add_argument("--cache-dir", default=str(DEFAULT_CACHE), help="embedding cache directory")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help=f"keep the {BENCH_DB_NAME} database at the end")
    parser.add_argument("--out", default="docs/benchmarks.md", help="markdown file to update ('' to skip)")
    args = parser.parse_args(argv)
    args.sizes_list = sorted({int(s) for s in args.sizes.split(",") if s.strip()})
    args.ef_list = [int(s) for s in args.ef.split(",") if s.strip()]
    if not args.sizes_list or min(args.sizes_list) < 100 or max(args.sizes_list) > 1_000_000:
        parser.error("--sizes: 100..1,000,000 each")
    if not 1 <= args.queries <= 5000 or not args.ef_list or not all(1 <= e <= 1000 for e in args.ef_list):
        parser.error("--queries 1..5000, --ef values 1..1000")
    if not 1 <= args.repeats <= 20 or not 1 <= args.ingest_articles <= args.ingest_texts <= 100_000:
        parser.error("--repeats 1..20, 1 <= --ingest-articles <= --ingest-texts <= 100,000")
    if args.compare_build_mem and not re.fullmatch(r"\d+(kB|MB|GB)", args.compare_build_mem):
        parser.error("--compare-build-mem: like 512MB or 1GB")
    return args


def _terminate(signum, frame):
    raise KeyboardInterrupt


def main(argv=None) -> int:
    args = parse_args(argv)
    # Ctrl-C and SIGTERM must reach the cleanup (the bench database is dropped in `finally`): a process
    # started in the background by a non-interactive shell inherits SIGINT as ignored, and
    # `devservices exec` forwards SIGINT, then kills after 30 s.
    signal.signal(signal.SIGINT, _terminate)
    signal.signal(signal.SIGTERM, _terminate)
    started = time.perf_counter()
    env = bench_env(dict(os.environ))
    django_setup(env)
    from django.conf import settings

    from knowledge import embeddings

    data = Path(args.data)
    log(f"building the corpus from {data}")
    sources = load_sources(data)
    n_max = max(args.sizes_list)
    corpus = make_texts(sources["paragraphs"], max(n_max, args.ingest_texts), args.seed)
    corpus_set = set(corpus)
    picked, query_sources = make_queries(sources["questions"], args.queries, corpus_set, args.seed)
    queries = [text for text, _ in picked]
    query_labels = [label for _, label in picked]
    word_counts = [len(t.split()) for t in corpus[:n_max]]
    corpus_info = {
        "distinct": len(set(corpus[:n_max])),
        "words": {"min": min(word_counts), "max": max(word_counts), "mean": round(statistics.mean(word_counts), 1)},
        "sources": sources["source_counts"],
        "query_sources": query_sources,
    }
    log(f"corpus: {corpus_info}")
    model = settings.EMBEDDING_MODEL
    cache = EmbeddingCache(Path(args.cache_dir), model, corpus)

    if args.embed_probe:
        step = max(1, len(corpus) // args.embed_probe)
        sample = corpus[::step][: args.embed_probe]
        embeddings.embed(sample[:32])  # load the model
        clock = Clock()
        embeddings.embed(sample)
        phase = clock.stop()
        rate = len(sample) / phase["wall_s"]
        words = statistics.mean(len(t.split()) for t in sample)
        print(
            json.dumps(
                {
                    "embed_probe_texts": len(sample), "mean_words": round(words, 1), **phase,
                    "texts_per_s": round(rate, 2), "projected_min_100k": round(100_000 / rate / 60, 1),
                    "other_busy": other_busy_processes(),
                }
            )
        )  # fmt: skip
        return 0

    sizes_done: list[dict] = []
    skipped: list[dict] = []
    ready: list[int] = []
    for n in args.sizes_list:
        state = ensure_embeddings(cache, n, args.max_embed_minutes)
        if state["ok"]:
            ready.append(n)
        else:
            skipped.append({"n": n, **state})
            log(f"N={n:,}: SKIPPED, embedding would take about {state['projected_min']} min ({state})")
    if args.embed_only:
        print(json.dumps({"embed_only": True, "ready": ready, "skipped": skipped, "cache": cache.summary(n_max)}))
        return 0 if not skipped else 3

    log(f"embedding {len(queries)} queries")
    queries_vec = embeddings.embed(queries).astype(np.float32)
    ensure_embeddings(cache, args.ingest_texts, 1e9)  # small; also gives the model a warm start
    summarised = max(ready) if ready else args.ingest_texts
    embed_summary = cache.summary(summarised)
    embed_summary["mean_words"] = round(statistics.mean(len(t.split()) for t in corpus[:summarised]), 1)
    ingestion = None
    try:
        for n in ready:
            sizes_done.append(
                run_size(n, env, cache, corpus, (queries, query_labels, queries_vec), sources["titles"], args)
            )
        if not args.no_ingest:
            close_django_connections()
            if not sizes_done:
                recreate_and_migrate(env)
            ingestion = run_ingestion(corpus[: args.ingest_texts], sources["titles"], args)
    finally:
        close_django_connections()
        if not args.keep:
            try:
                drop_database(env["DATABASE_URL"], BENCH_DB_NAME)
                log(f"dropped {BENCH_DB_NAME}")
            except Exception as exc:  # report, do not mask the original error
                log(f"could not drop {BENCH_DB_NAME} ({exc}); the next run drops and recreates it")

    import sentence_transformers
    import torch

    with admin_connect(env["DATABASE_URL"]) as conn:
        facts = server_facts(conn)
    cpu_model = next(
        (
            ln.split(":", 1)[1].strip()
            for ln in Path("/proc/cpuinfo").read_text().splitlines()
            if ln.startswith("model name")
        ),
        platform.processor(),
    )
    meta = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "sentence_transformers": sentence_transformers.__version__,
        "model": model,
        "cpus": os.cpu_count(),
        "cpu_model": cpu_model,
        "mem_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "postgres": facts,
        "queries": len(queries),
        "bench_minutes": round((time.perf_counter() - started) / 60, 1),
        "loadavg_end": [round(x, 2) for x in os.getloadavg()],
        "other_busy": other_busy_processes(),
    }
    verdict = verdicts(sizes_done, skipped, ingestion)
    notes = observations(sizes_done, skipped, ingestion, embed_summary, facts)

    print(f"\nKnowledge base: vector search and ingestion ({meta['date']}, {meta['cpus']} cores)\n")
    if sizes_done:
        print(load_table(sizes_done))
        print()
        print(search_table(sizes_done))
    if ingestion:
        print()
        print(ingest_table(ingestion))
    print("\nTargets:")
    print("\n".join(verdict))
    print("\nNotes:")
    print("\n".join(notes))
    if args.out:
        docs_update(
            args.out,
            SECTION_HEADING,
            docs_section(args, meta, corpus_info, embed_summary, sizes_done, skipped, ingestion, verdict, notes),
        )
    payload = {
        "benchmark": "kb_vector_search_and_ingestion",
        "meta": meta,
        "params": {
            "sizes": args.sizes_list, "queries": args.queries, "ef": args.ef_list, "k": K,
            "app_candidates": APP_CANDIDATES, "ingest_texts": args.ingest_texts,
            "ingest_articles": args.ingest_articles, "ingest_groups": args.ingest_groups, "repeats": args.repeats,
            "compare_build_mem": args.compare_build_mem, "max_embed_minutes": args.max_embed_minutes,
        },
        "corpus": corpus_info,
        "embedding": embed_summary,
        "sizes": sizes_done,
        "skipped": skipped,
        "ingestion": ingestion,
        "targets": verdict,
    }  # fmt: skip
    print(json.dumps(payload, separators=(",", ":"), default=str))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        log("interrupted")
        sys.exit(130)
