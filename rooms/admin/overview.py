"""The overview page (/admin/overview/): calls, people and connections of the last days."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from rooms import selectors
from rooms.admin import charts
from rooms.selectors.overview import overview

# --- The overview (/admin/overview/, linked from the admin index) ---------------------------

TROUBLE_LIST = "admin:rooms_callquality_changelist"


def overview_view(request: HttpRequest) -> HttpResponse:
    """Calls, people and connections of the last days, as charts read at a glance (staff only)."""
    figures = overview()
    setup = None
    if figures.setup_p50_ms is not None:
        setup = charts.hbars([("p50", figures.setup_p50_ms), ("p95", figures.setup_p95_ms)])
    quality_list = reverse(TROUBLE_LIST)
    context = {
        **admin.site.each_context(request),
        "title": _("Overview"),
        "overview": figures,
        "calls_chart": charts.bar_chart(
            [(day.day.strftime("%m-%d"), day.calls) for day in figures.days]
        ),
        "people_chart": charts.bar_chart(
            [(day.day.strftime("%m-%d"), day.people) for day in figures.days]
        ),
        "relayed": charts.share(figures.relayed, figures.connections),
        "failed": charts.share(figures.ice_failed, figures.connections),
        "setup": setup,
        "links": {
            kind: f"{quality_list}?trouble={kind}"
            for kind in (selectors.RELAYED, selectors.ICE_FAILED)
        },
    }
    return TemplateResponse(request, "admin/rooms/overview.html", context)
