"""The per-process embedding cache: one model call per batch of new texts, the same vectors as ``embed``."""

from __future__ import annotations

import numpy as np
import pytest

from knowledge import embeddings


@pytest.fixture
def model_calls(monkeypatch):
    """Every batch the model encodes, with an empty cache to start from."""
    monkeypatch.setattr(embeddings, "_cache", type(embeddings._cache)())
    calls: list[list[str]] = []
    encode = embeddings.embed

    def counting(texts, **kwargs):
        calls.append(list(texts))
        return encode(texts, **kwargs)

    monkeypatch.setattr(embeddings, "embed", counting)
    return calls


def test_each_distinct_text_is_encoded_once_and_gets_the_vector_embed_gives(model_calls):
    # given texts of which one repeats
    texts = ["How do I reset my password?", "My card was charged twice", "How do I reset my password?"]

    # when they are embedded twice through the cache
    first = embeddings.embed_cached(texts)
    second = embeddings.embed_cached(texts[:2])

    # then the model ran once, on the two distinct texts, and every copy is the vector embed gives
    assert model_calls == [["How do I reset my password?", "My card was charged twice"]]
    alone = np.stack([embeddings.embed([t])[0] for t in texts])
    assert first.shape == (3, 384)
    np.testing.assert_allclose(first, alone, atol=1e-6)
    np.testing.assert_array_equal(first[0], first[2])
    np.testing.assert_array_equal(second, first[:2])


def test_only_new_texts_reach_the_model_and_the_query_vector_is_the_cached_one(model_calls):
    embeddings.embed_cached(["Export my notes"])

    vector = embeddings.embed_query("Export my notes")
    embeddings.embed_cached(["Export my notes", "Delete my account"])

    assert model_calls == [["Export my notes"], ["Delete my account"]]
    assert vector == embeddings.embed_cached(["Export my notes"])[0].tolist()


def test_the_cache_keeps_only_the_most_recent_texts(model_calls, settings):
    settings.EMBEDDING_CACHE_SIZE = 2
    embeddings.embed_cached(["one text", "two texts"])
    embeddings.embed_cached(["one text"])  # used again: now the most recent
    embeddings.embed_cached(["three texts"])  # evicts "two texts"

    embeddings.embed_cached(["one text", "two texts"])

    assert model_calls == [["one text", "two texts"], ["three texts"], ["two texts"]]
    assert len(embeddings._cache) == 2


def test_cached_vectors_cannot_be_changed_in_place_by_a_caller(model_calls):
    embeddings.embed_cached(["Share a notebook"])
    cached = embeddings._cache[(embeddings.model_name(), "Share a notebook")]

    with pytest.raises(ValueError, match="read-only"):
        cached *= 2


def test_no_texts_give_an_empty_matrix(model_calls):
    assert embeddings.embed_cached([]).shape == (0, 384)
    assert model_calls == []


# --- texts of waiting messages, encoded ahead -------------------------------------------------------------
# (the pipeline's side, which messages are waiting: tickets/tests/test_embed_ahead.py)


def test_waiting_messages_texts_ride_along_in_the_same_call_and_reach_another_process(model_calls):
    # given a message to embed, two waiting messages' texts, and the AI cache off (as in these tests)
    own, waiting = ["Where is my invoice for March?"], ["My export is stuck at 80%", "Can I share a notebook?"]

    # when the message is embedded with the waiting texts along
    vectors = embeddings.embed_cached(own, ahead=lambda: waiting)

    # then one model call took all three, and only the message's own vector came back
    assert model_calls == [own + waiting]
    assert vectors.shape == (1, 384)

    # and another process (nothing in its memory) finds the waiting texts' vectors without the model
    embeddings._cache.clear()
    handed = embeddings.embed_cached(waiting)
    assert model_calls == [own + waiting]
    np.testing.assert_allclose(handed, embeddings.embed(waiting), atol=1e-6)


def test_waiting_texts_are_not_even_listed_when_the_message_needs_no_model_call(model_calls):
    embeddings.embed_cached(["How do I add a member?"])
    asked = []

    embeddings.embed_cached(["How do I add a member?"], ahead=lambda: asked.append(1) or ["other"])

    assert asked == []
    assert model_calls == [["How do I add a member?"]]


def test_texts_another_process_already_encoded_ahead_are_not_encoded_again(model_calls):
    embeddings.embed_cached(["first message"], ahead=lambda: ["waiting one"])
    embeddings._cache.clear()  # the other process

    embeddings.embed_cached(["second message"], ahead=lambda: ["waiting one", "waiting two", "second message"])

    assert model_calls == [["first message", "waiting one"], ["second message", "waiting two"]]


def test_with_ahead_off_nothing_is_handed_over(model_calls, settings):
    settings.AI_EMBED_AHEAD = 0
    embeddings.embed_cached(["a message"], ahead=lambda: ["waiting"])  # the pipeline lists none when off
    embeddings._cache.clear()

    embeddings.embed_cached(["waiting"])

    assert model_calls == [["a message", "waiting"], ["waiting"]]
