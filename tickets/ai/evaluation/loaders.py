"""The public dataset folders (``../shared/datasets``, see its README) as texts and labels: what each
evaluation reads from them, read once here. File-level readers are ``supportflow.evaluation``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from supportflow.evaluation import DatasetError, dev_or_test, read_csv, read_json

OUR_PRIORITY = {"medium": "normal"}  # openticketai has low / medium / high; we have no "urgent" there


@dataclass
class Rows:
    """Texts with aligned label columns (``labels[name][i]`` belongs to ``texts[i]``)."""

    texts: list[str]
    labels: dict[str, list[str]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.texts)

    def take(self, index: Sequence[int]) -> Rows:
        return Rows([self.texts[i] for i in index], {k: [v[i] for i in index] for k, v in self.labels.items()})

    def __add__(self, other: Rows) -> Rows:
        return Rows(self.texts + other.texts, {k: v + other.labels[k] for k, v in self.labels.items()})


# --- triage datasets ----------------------------------------------------------------------------------


def bitext_rows(path: Path) -> Rows:
    rows = read_csv(path)
    return Rows(
        [r["instruction"] for r in rows],
        {
            "category": [r["category"] for r in rows],
            "intent": [r["intent"] for r in rows],
            "tags": [r["tags"] for r in rows],
        },
    )


def clinc_domains(folder: Path) -> dict[str, str]:
    """{intent: domain} from clinc150's ``domains.json``."""
    return {intent: domain for domain, intents in read_json(folder / "domains.json").items() for intent in intents}


def clinc_rows(path: Path, domains: dict[str, str], parts: Sequence[str]) -> Rows:
    data = read_json(path)
    texts, intents = [], []
    for part in parts:
        for text, intent in data.get(part, []):
            texts.append(text)
            intents.append(intent)
    return Rows(texts, {"category": intents, "department": [domains.get(i, "oos") for i in intents]})


def ticket_rows(path: Path) -> Rows:
    rows = read_csv(path)
    return Rows(
        ["\n".join(p for p in (r["subject"].strip(), r["body"].strip()) if p) for r in rows],
        {
            "department": [r["queue"] for r in rows],
            "priority": [OUR_PRIORITY.get(r["priority"], r["priority"]) for r in rows],
            "category": [r["type"] for r in rows],
            "language": [r["language"] for r in rows],
        },
    )


def tweet_rows(path: Path) -> Rows:
    rows = read_csv(path)
    return Rows([r["text"] for r in rows], {"sentiment": [r["airline_sentiment"] for r in rows]})


def banking_rows(path: Path) -> Rows:
    rows = read_csv(path)
    return Rows([r["text"] for r in rows], {"category": [r["category"] for r in rows]})


# --- guard datasets -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Labelled:
    text: str
    label: int


def load_deepset(path: Path) -> list[Labelled]:
    rows = read_csv(path)
    if not rows or not {"text", "label"} <= set(rows[0]):
        raise DatasetError(f"{path} needs columns text,label.")
    return [Labelled(r["text"], int(r["label"])) for r in rows if r["text"].strip()]


@dataclass(frozen=True)
class BenignSet:
    name: str
    file: str
    texts: list[str]


def load_benign(folder: Path) -> BenignSet:
    """The customer-written texts of a triage dataset folder (test file when present)."""
    if (folder / "bitext.csv").exists() or (folder / "bitext_test.csv").exists():
        path = dev_or_test(folder, "bitext.csv", "bitext_test.csv")
        texts = [r["instruction"] for r in read_csv(path)]
    elif (folder / "tickets_v5.csv").exists() or (folder / "tickets_test.csv").exists():
        path = dev_or_test(folder, "tickets_v5.csv", "tickets_test.csv")
        # The CSV stores line breaks as the two characters backslash-n.
        texts = [
            f"{r.get('subject') or ''}\n{r.get('body') or ''}".replace("\\n", "\n").strip() for r in read_csv(path)
        ]
    elif (folder / "tweets.csv").exists() or (folder / "tweets_test.csv").exists():
        path = dev_or_test(folder, "tweets.csv", "tweets_test.csv")
        texts = [r["text"] for r in read_csv(path)]
    elif (folder / "data_dev.json").exists() or (folder / "data_test.json").exists():
        path = dev_or_test(folder, "data_dev.json", "data_test.json")
        data = read_json(path)
        texts = [t for t, _ in data.get("test" if path.name == "data_test.json" else "train", [])]
    elif (folder / "train.csv").exists() or (folder / "test.csv").exists():
        path = dev_or_test(folder, "train.csv", "test.csv")
        rows = read_csv(path)
        if rows and "category" not in rows[0]:
            raise DatasetError(f"{folder} does not look like banking77 (text,category).")
        texts = [r["text"] for r in rows]
    else:
        raise DatasetError(f"{folder}: not a known benign triage folder.")
    texts = [t for t in texts if t and t.strip()]
    return BenignSet(name=folder.name, file=path.name, texts=texts)


def load_passages(folder: Path) -> list[str]:
    """Knowledge-base passages as the pipeline sees them: each article chunked like ``kb_ingest`` does."""
    from knowledge.chunking import chunk_markdown

    if (folder / "kb.json").exists():
        articles = read_json(folder / "kb.json")
        bodies = [a["question"] + "\n\n" + "\n\n".join(a["answers"]) for a in articles]
    elif (folder / "faq_covidbert.csv").exists():
        bodies = [f"{r['question']}\n\n{r['answer']}" for r in read_csv(folder / "faq_covidbert.csv")]
    else:
        raise DatasetError(f"{folder}: not a known knowledge-base folder (stackfaq, covid_faq_deepset).")
    return [chunk.text for body in bodies for chunk in chunk_markdown(body)]
