"""The help center, suggestions and the console's passages, over HTTP against real search."""

from __future__ import annotations

import pytest
from django.urls import reverse

from knowledge import services
from knowledge.models import Article, ArticleVote, SuggestionImpression
from tickets.tests.factories import make_ticket


@pytest.fixture
def kb(db, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        billing = services.category_for("Billing")
        services.article_save(
            title="Why was I charged twice?",
            slug="charged-twice",
            status="published",
            category=billing,
            reindex="now",
            body="## Duplicate charges\n\nA second charge is a pending authorisation your bank "
            "releases in 3–5 days. <script>alert(1)</script>",
        )
        services.article_save(
            title="Reset sync on Android",
            slug="reset-sync",
            status="published",
            reindex="now",
            body="## Steps\n\nOpen Settings → Sync → Reset local cache when sync is stuck.",
        )
        services.article_save(
            title="Secret pricing plan",
            slug="secret",
            status="draft",
            reindex="now",
            body="## Internal\n\nNew pricing for duplicate charges next year.",
        )
    return {a.slug: a for a in Article.objects.all()}


@pytest.mark.django_db
def test_index_lists_published_articles_by_category(client, kb):
    html = client.get(reverse("help:index")).content.decode()
    assert "Billing" in html
    assert "Why was I charged twice?" in html
    assert "Reset sync on Android" in html
    assert "Secret pricing plan" not in html


@pytest.mark.django_db
def test_search_shows_results_with_escaped_snippets_and_records_impressions(client, kb):
    html = client.get(reverse("help:index"), {"q": "charged twice duplicate"}).content.decode()
    assert "Why was I charged twice?" in html
    assert "Secret pricing plan" not in html
    assert "<script>alert" not in html
    assert SuggestionImpression.objects.filter(place="help_search", article=kb["charged-twice"]).exists()


@pytest.mark.django_db
def test_article_page_renders_counts_views_and_hides_drafts(client, kb):
    response = client.get(reverse("help:article", args=["charged-twice"]))
    assert response.status_code == 200
    assert "<h2>Duplicate charges</h2>" in response.content.decode()
    assert "<script>alert" not in response.content.decode()
    kb["charged-twice"].refresh_from_db()
    assert kb["charged-twice"].view_count == 1
    assert client.get(reverse("help:article", args=["secret"])).status_code == 404
    assert client.get(reverse("help:article", args=["no-such-thing"])).status_code == 404


@pytest.mark.django_db
def test_helpful_votes_count_once_per_visitor(client, kb):
    url = reverse("help:vote", args=["charged-twice"])
    client.get(reverse("help:article", args=["charged-twice"]))  # sets the visitor cookie
    first = client.post(url, {"helpful": "yes"}, HTTP_HX_REQUEST="true")
    second = client.post(url, {"helpful": "no"}, HTTP_HX_REQUEST="true")
    assert first.status_code == second.status_code == 200
    assert "already answered" in second.content.decode()
    article = Article.objects.get(slug="charged-twice")
    assert (article.helpful_yes, article.helpful_no) == (1, 0)

    other_visitor = client.__class__()
    other_visitor.post(url, {"helpful": "no"})
    article.refresh_from_db()
    assert (article.helpful_yes, article.helpful_no) == (1, 1)
    assert ArticleVote.objects.count() == 2
    assert client.post(url, {"helpful": "maybe"}).status_code == 400


@pytest.mark.django_db
def test_chat_suggestions_while_typing_are_recorded_and_clicks_counted(client, kb):
    short = client.get(reverse("help:suggest"), {"body": "hi there"})
    assert "may answer" not in short.content.decode()

    response = client.get(reverse("help:suggest"), {"body": "why do I see a duplicate charge", "place": "chat_start"})
    html = response.content.decode()
    assert "Why was I charged twice?" in html
    assert "Secret pricing plan" not in html
    impression = SuggestionImpression.objects.get(article=kb["charged-twice"], place="chat_start")
    assert impression.clicked_at is None

    link = html.split('href="')[1].split('"')[0]
    assert client.get(link)["Location"] == reverse("help:article", args=["charged-twice"])
    impression.refresh_from_db()
    assert impression.clicked_at is not None
    assert client.get("/help/go/forged-token/").status_code == 404


@pytest.mark.django_db
def test_console_shows_passages_relevant_to_the_conversation(client, kb, agent, department):
    ticket = make_ticket(department=department, body="My Android app sync is stuck at 87%")
    client.force_login(agent)
    html = client.get(reverse("admin:tickets_ticket_passages", args=[ticket.pk])).content.decode()
    assert "Reset sync on Android" in html
    assert "/help/articles/reset-sync/" in html


@pytest.mark.django_db
def test_passages_follow_ticket_access(client, kb, department, other_department):
    from tickets.tests.factories import make_agent

    ticket = make_ticket(department=department)
    client.force_login(make_agent(other_department))
    assert client.get(reverse("admin:tickets_ticket_passages", args=[ticket.pk])).status_code == 404
