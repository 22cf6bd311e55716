from __future__ import annotations

from knowledge.chunking import MAX_TOKENS, chunk_markdown, count_tokens

BODY = """# Sync

Sync keeps your notes the same on every device.

## Android

### Reset the local cache

Open Settings → Sync → Reset local cache. Your notes stay on the server.

If that does not help, sign out and back in.

```
nimbus sync --reset

nimbus sync --status
```

## iOS

Pull down on the notes list to sync now.
"""


def test_chunks_follow_headings_and_keep_exact_offsets():
    chunks = chunk_markdown(BODY)
    assert [c.heading_path for c in chunks] == ["Sync", "Sync > Android > Reset the local cache", "Sync > iOS"]
    for chunk in chunks:
        assert BODY[chunk.start : chunk.end] == chunk.text
    assert "nimbus sync --reset\n\nnimbus sync --status" in chunks[1].text  # a code fence is never split
    assert [c.position for c in chunks] == [0, 1, 2]


def test_long_sections_are_bounded_and_overlap():
    sentences = " ".join(f"Sentence number {i} talks about syncing notes." for i in range(120))
    paragraphs = "\n\n".join(f"Paragraph {i} is short." for i in range(40))
    body = f"# Long\n\n{sentences}\n\n## Many\n\n{paragraphs}\n"
    chunks = chunk_markdown(body)
    assert all(c.tokens <= MAX_TOKENS for c in chunks)
    assert all(body[c.start : c.end] == c.text for c in chunks)
    many = [c for c in chunks if c.heading_path == "Long > Many"]
    assert len(many) >= 2
    # The last paragraph of one chunk opens the next one in the same section.
    assert many[1].text.startswith(many[0].text.split("\n\n")[-1])
    covered = "".join(body[c.start : c.end] for c in chunks)
    assert "Paragraph 39 is short." in covered
    assert "Sentence number 119" in covered


def test_one_enormous_sentence_is_cut_at_words():
    body = "word " * 2000
    chunks = chunk_markdown(body)
    assert len(chunks) > 5
    assert all(c.tokens <= MAX_TOKENS for c in chunks)


def test_empty_and_heading_only_bodies_make_no_chunks():
    assert chunk_markdown("") == []
    assert chunk_markdown("# Title only\n\n## And a subheading\n") == []


def test_token_count_is_stable():
    assert count_tokens("Hello, world!") == 5
