"""``console_screenshots`` end to end: it serves the app, signs in the demo agent and manager without their
passwords and writes 1400x900 PNGs of the console in both themes (the pages the docs show, not a login form)."""

from __future__ import annotations

import struct
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from tickets.tests.factories import CustomerFactory, DepartmentFactory, make_agent, make_manager, make_ticket

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _fresh_channel_layer(fresh_channel_layer):
    return


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def test_the_command_writes_the_inbox_and_analytics_in_light_and_dark(tmp_path):
    billing = DepartmentFactory(name="Billing")
    make_agent(billing, username="alice")
    make_manager(billing, username="maria")
    make_ticket(department=billing, customer=CustomerFactory(name="Grace Hopper"), subject="Wrong VAT number")
    out = StringIO()

    call_command("console_screenshots", "--out", str(tmp_path), "--only", "inbox", "analytics", stdout=out)

    names = sorted(path.name for path in tmp_path.iterdir())
    assert names == [f"console-{page}-{theme}.png" for page in ("analytics", "inbox") for theme in ("dark", "light")]
    for path in tmp_path.iterdir():
        data = path.read_bytes()
        assert png_size(data) == (1400, 900)
        assert 10_000 < len(data) < 250_000, (path.name, len(data))
    light, dark = ((tmp_path / f"console-inbox-{theme}.png").read_bytes() for theme in ("light", "dark"))
    assert light != dark
    assert "4 screenshots written." in out.getvalue()


def test_an_unknown_page_is_refused_before_anything_runs(tmp_path):
    with pytest.raises(CommandError, match="invalid choice: 'inbx'"):
        call_command("console_screenshots", "--out", str(tmp_path), "--only", "inbx")
    assert list(tmp_path.iterdir()) == []
