"""The benchmark-only bare Django view: never routed unless ``BENCH_ENDPOINTS`` is on."""

from __future__ import annotations

import pytest
from django.test import RequestFactory
from django.urls import Resolver404, resolve

from supportflow.bench_views import bench_hello


def test_the_bare_view_is_not_routed_by_default(settings):
    assert settings.BENCH_ENDPOINTS is False
    with pytest.raises(Resolver404):
        resolve("/bench/hello/")


def test_the_bare_view_answers_hello_without_the_database():
    response = bench_hello(RequestFactory().get("/bench/hello/"))  # no db mark: a query would fail the test
    assert (response.status_code, response.content) == (200, b"hello")
