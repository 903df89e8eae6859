"""Django admin for call quality: every report, and the trouble lists (relayed, failed, lossy)."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from rooms import selectors
from rooms.models import CallQuality
from rooms.selectors import QUALITY_TROUBLE, quality_reports


class TroubleFilter(admin.SimpleListFilter):
    """The calls worth a look: relayed, ICE failed, high loss or RTT (see rooms.selectors)."""

    title = _("trouble")
    parameter_name = "trouble"

    def lookups(self, request, model_admin):
        return (
            (selectors.RELAYED, _("needed a TURN relay")),
            (selectors.ICE_FAILED, _("ICE failed")),
            (
                selectors.HIGH_LOSS_KIND,
                _("loss at least %d %%") % round(100 * selectors.HIGH_LOSS),
            ),
            (selectors.HIGH_RTT, _("RTT at least %d ms") % selectors.HIGH_RTT_MS),
        )

    def queryset(self, request, queryset):
        condition = QUALITY_TROUBLE.get(self.value() or "")
        return queryset if condition is None else queryset.filter(condition)


@admin.register(CallQuality)
class CallQualityAdmin(admin.ModelAdmin):
    """The browsers' own account of each call, read-only: "the call was bad", what happened?"""

    list_display = (
        "updated_at",
        "room_number",
        "reporter",
        "remote_peer_id",
        "final",
        "state",
        "path",
        "rtt_ms",
        "loss_in_percent",
        "bitrate_in_kbps",
        "bitrate_out_kbps",
        "frames_dropped",
        "ice_restarts",
    )
    list_filter = (
        TroubleFilter,
        "final",
        "state",
        "local_candidate_type",
        "remote_candidate_type",
    )
    search_fields = (
        "participant__room__number",
        "participant__user__username",
        "participant__peer_id",
        "remote_peer_id",
    )
    list_select_related = ("participant__room", "participant__user")
    date_hierarchy = "updated_at"

    def get_queryset(self, request: HttpRequest) -> QuerySet[CallQuality]:
        return quality_reports()

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: CallQuality | None = None) -> bool:
        return False

    @admin.display(description=_("room"), ordering="participant__room__number")
    def room_number(self, report: CallQuality) -> str:
        return report.participant.room.number

    @admin.display(description=_("reported by"), ordering="participant__user__username")
    def reporter(self, report: CallQuality) -> str:
        return f"{report.participant.user} ({report.participant.peer_id})"

    @admin.display(description=_("path"))
    def path(self, report: CallQuality) -> str:
        ends = f"{report.local_candidate_type or '?'} → {report.remote_candidate_type or '?'}"
        via = f" via TURN/{report.relay_protocol}" if report.relay_protocol else ""
        return f"{ends} {report.protocol or ''}{via}".strip()

    @admin.display(description=_("loss in (%)"), ordering="loss_in_ratio")
    def loss_in_percent(self, report: CallQuality) -> str:
        loss = report.loss_in
        return "" if loss is None else f"{100 * loss:.1f}"
