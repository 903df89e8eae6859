"""The admin overview: figures from factory data, an empty database, and the charts' geometry."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest
from django.test import Client
from django.utils import timezone

from rooms.admin import charts
from rooms.models import CallQuality, Participant
from rooms.selectors.overview import overview, percentile
from rooms.templatetags.rooms_admin import format_duration

# Annotations (durations, loss ratios, per-day counts) differ between backends: both run.
pytestmark = pytest.mark.postgres

OVERVIEW = "/admin/overview/"


@pytest.fixture
def admin_client(superuser) -> Client:
    client = Client()
    client.force_login(superuser)
    return client


@pytest.fixture
def call_history(make_room, add_participant, alice, bob, carol, dave):
    """Three calls over four days and ten connections with known figures.

    Three days ago: room 1 with alice and bob. Today: room 1 again (alice),
    room 2 with carol, dave and alice. Eight days ago... nothing; twenty days
    ago: one call, outside the 14 days. Connections: setup times 100..1000 ms,
    three relayed, one whose ICE failed; one of them with a live and a final
    report (counted once, from the final one).
    """
    now = timezone.now()
    today_noon = now.replace(hour=12, minute=0, second=0, microsecond=0)
    first, second, old = make_room(alice), make_room(carol), make_room(bob)

    def joined(room, user, when: datetime) -> Participant:
        participant = add_participant(room, user, left=True, reason="left")
        Participant.objects.filter(pk=participant.pk).update(joined_at=when)
        return participant

    three_days_ago = today_noon - timedelta(days=3)
    a = joined(first, alice, three_days_ago)
    b = joined(first, bob, three_days_ago + timedelta(minutes=1))
    joined(first, alice, today_noon - timedelta(hours=2))
    c = joined(second, carol, today_noon - timedelta(hours=1))
    d = joined(second, dave, today_noon - timedelta(hours=1))
    joined(second, alice, today_noon - timedelta(minutes=50))
    joined(old, bob, today_noon - timedelta(days=20))

    pairs = [(a, b), (b, a), (c, d), (d, c)]
    for index, setup in enumerate(range(100, 1001, 100)):
        reporter, remote = pairs[index % 4]
        # Distinct remote ids make distinct connections (the pairs repeat).
        CallQuality.objects.create(
            participant=reporter,
            remote_peer_id=f"{remote.peer_id}-{index}",
            final=True,
            state="failed" if index == 9 else "closed",
            first_frame_ms=setup,
            local_candidate_type="relay" if index in (0, 1, 2) else "host",
            remote_candidate_type="host",
            ice_failed=1 if index == 9 else 0,
            created_at=today_noon - timedelta(hours=1),
        )
    # A live report of a pair that has ended: its final one (above) counts, not this.
    CallQuality.objects.create(
        participant=a,
        remote_peer_id=f"{b.peer_id}-0",
        final=False,
        first_frame_ms=5000,
        local_candidate_type="relay",
        created_at=today_noon - timedelta(hours=1),
    )
    # A connection of twenty days ago: outside the window.
    CallQuality.objects.create(
        participant=a,
        remote_peer_id="old",
        final=True,
        first_frame_ms=9000,
        ice_failed=1,
        created_at=today_noon - timedelta(days=20),
    )
    return today_noon.date()


@pytest.mark.django_db
class TestFigures:
    def test_calls_people_and_connections(self, call_history):
        """Calls and people per day, relayed share, ICE failures and setup p50/p95, exactly."""
        figures = overview(today=call_history)
        assert len(figures.days) == 14
        assert figures.days[-1].day == call_history
        by_day = {day.day: (day.calls, day.people) for day in figures.days if day.calls}
        assert by_day == {
            call_history - timedelta(days=3): (1, 2),
            call_history: (2, 3),
        }
        assert figures.calls == 3
        assert (figures.connections, figures.relayed, figures.ice_failed) == (10, 3, 1)
        assert figures.relayed_share == 0.3
        assert figures.ice_failure_rate == 0.1
        assert (figures.setup_samples, figures.setup_p50_ms, figures.setup_p95_ms) == (
            10,
            500,
            1000,
        )

    def test_empty_database(self, db):
        """Nothing yet: fourteen empty days, no shares and no percentiles (nothing divided by 0)."""
        figures = overview()
        assert [(day.calls, day.people) for day in figures.days] == [(0, 0)] * 14
        assert figures.has_calls is False
        assert (figures.relayed_share, figures.ice_failure_rate) == (None, None)
        assert (figures.setup_p50_ms, figures.setup_p95_ms) == (None, None)


@pytest.mark.django_db
class TestPage:
    def test_renders_the_figures(self, admin_client, call_history):
        """The page shows the exact figures and draws its charts as inline SVG with no style."""
        response = admin_client.get(OVERVIEW)
        assert response.status_code == 200
        html = response.content.decode()
        figure = {
            name: re.search(rf'data-testid="overview-{name}">([^<]*)<', html).group(1)
            for name in ("calls", "relayed", "failed", "p50", "p95")
        }
        assert figure == {
            "calls": "3",
            "relayed": "30.0 %",
            "failed": "10.0 %",
            "p50": "500 ms",
            "p95": "1000 ms",
        }
        assert "(3 of 10)" in html and "(1 of 10)" in html
        # Two bar charts (calls, people) of 14 bars each, two shares and the setup bars.
        assert html.count('<svg class="chart"') == 5
        assert len(re.findall(r'<rect class="bar"', html)) == 14 + 1 + 2
        assert len(re.findall(r'<rect class="bar bar-people"', html)) == 14
        # The people chart's tallest bar is today's 3 people: the full plot height.
        today = call_history.strftime("%m-%d")
        assert re.search(
            rf'<rect class="bar bar-people" x="[\d.]+" y="18\.0?" width="[\d.]+" height="112\.0?">'
            rf"<title>{today}: 3</title>",
            html,
        )
        assert not re.search(r"\sstyle=", html)
        assert "<script" not in html.split('id="content-main"', 1)[1]
        assert "?trouble=relayed" in html and "?trouble=ice-failed" in html

    def test_renders_an_empty_database(self, admin_client):
        """With no calls at all the page says so, status 200, and draws no chart."""
        response = admin_client.get(OVERVIEW)
        assert response.status_code == 200
        html = response.content.decode()
        assert re.search(r'data-testid="overview-empty">No calls yet', html)
        assert '<svg class="chart"' not in html

    def test_calls_without_reports(self, admin_client, make_room, add_participant, alice):
        """People met but no browser reported yet: the calls are charted, shares say so."""
        add_participant(make_room(alice), alice)
        html = admin_client.get(OVERVIEW).content.decode()
        assert re.search(r'data-testid="overview-calls">1<', html)
        assert 'data-testid="overview-no-reports"' in html

    def test_staff_only_and_linked_from_the_index(self, admin_client, alice):
        """The index links the overview; someone not staff is sent to the admin login."""
        assert 'href="/admin/overview/"' in admin_client.get("/admin/").content.decode()
        client = Client()
        client.force_login(alice)
        response = client.get(OVERVIEW)
        assert response.status_code == 302
        assert response["Location"] == "/admin/login/?next=/admin/overview/"


# --- Pure helpers ----------------------------------------------------------------------------


def test_percentile_is_nearest_rank():
    """Nearest rank: a value that occurred; None without values."""
    assert percentile([], 50) is None
    assert percentile([7], 95) == 7
    assert percentile([4, 1, 3, 2], 50) == 2
    assert percentile(list(range(100, 1001, 100)), 50) == 500
    assert percentile(list(range(100, 1001, 100)), 95) == 1000
    assert percentile(list(range(1, 101)), 95) == 95


def test_bar_chart_geometry():
    """Bars scaled to the tallest, in equal slots with a gap, on a common baseline."""
    chart = charts.bar_chart([("a", 0), ("b", 5), ("c", 10)], width=300, height=150)
    assert (chart.peak, chart.baseline, chart.label_every) == (10, 130, 1)
    assert [(bar.x, bar.y, bar.width, bar.height) for bar in chart.bars] == [
        (2.0, 130.0, 96.0, 0.0),
        (102.0, 74.0, 96.0, 56.0),
        (202.0, 18.0, 96.0, 112.0),
    ]
    assert [bar.centre for bar in chart.bars] == [50.0, 150.0, 250.0]


def test_bar_chart_of_zeros_and_of_nothing():
    """All zeros: flat bars, no division by zero; no values: no bars."""
    chart = charts.bar_chart([("a", 0), ("b", 0)], width=100)
    assert [bar.height for bar in chart.bars] == [0.0, 0.0]
    assert charts.bar_chart([]).bars == []


def test_many_bars_label_every_few():
    """30 bars on 560 px: a label every third bar back from the last, so labels never overlap."""
    chart = charts.bar_chart([(str(n), n) for n in range(30)], width=560)
    assert chart.label_every == 3
    assert [bar.label for bar in chart.labelled] == [str(n) for n in range(2, 30, 3)]


def test_share_and_hbars():
    """A share is a filled part of the bar with its percentage; no whole, no share."""
    assert charts.share(1, 3, width=300) == charts.Share(width=300, filled=100.0, percent="33.3 %")
    assert charts.share(0, 0) is None
    assert charts.share(5, 4, width=100).filled == 100
    bars = charts.hbars([("p50", 500), ("p95", 1000)], width=560)
    assert [(bar.x, bar.y, bar.width, bar.height) for bar in bars] == [
        (60, 4, 210.0, 18),
        (60, 30, 420.0, 18),
    ]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0 s"), (59.9, "59 s"), (60, "1 min"), (3599, "59 min"), (3900, "1 h 05 min"),
     (90000, "1 d 1 h")],
)  # fmt: skip
def test_format_duration(seconds, text):
    """Durations as people say them."""
    assert format_duration(seconds) == text
