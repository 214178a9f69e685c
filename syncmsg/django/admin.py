"""The outbox in the Django admin: read-only, with a "retry now" action.

Loaded by ``django.contrib.admin``'s autodiscovery when the admin is installed. Rows can
be looked at (subject, message id, payload, attempts, last error) but not added, changed
or deleted: the relay owns them. "Retry now" makes the selected pending rows due at once
(it clears the backoff after a failure); published rows are left alone. It is offered to
users with the ``syncmsg.change_outboxmessage`` permission (superusers).

Threading: request threads, as every admin view.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

from django.contrib import admin, messages
from django.utils import timezone

from syncmsg.django.outbox._models import OutboxMessage

__all__ = ["OutboxMessageAdmin"]

_PREVIEW = 2000  # characters of payload shown on a row's page

F = TypeVar("F", bound=Callable[..., Any])


def _display(description: str) -> Callable[[F], F]:
    return cast("Callable[[F], F]", admin.display(description=description))


def _action(description: str, permissions: list[str]) -> Callable[[F], F]:
    return cast("Callable[[F], F]", admin.action(description=description, permissions=permissions))


class _StateFilter(admin.SimpleListFilter):  # type: ignore[misc]  # no type hints in Django
    title = "state"
    parameter_name = "state"

    def lookups(self, request: Any, model_admin: Any) -> list[tuple[str, str]]:
        return [
            ("pending", "pending"),
            ("failing", "pending, failed before"),
            ("published", "published"),
        ]

    def queryset(self, request: Any, queryset: Any) -> Any:
        if self.value() == "pending":
            return queryset.filter(published__isnull=True)
        if self.value() == "failing":
            return queryset.filter(published__isnull=True, attempts__gt=0)
        if self.value() == "published":
            return queryset.filter(published__isnull=False)
        return queryset


@admin.register(OutboxMessage)
class OutboxMessageAdmin(admin.ModelAdmin):  # type: ignore[misc]
    list_display = ("id", "subject", "key", "msg_id", "created", "state", "attempts", "error")
    list_filter = (_StateFilter,)
    search_fields = ("subject", "msg_id", "key")
    ordering = ("-id",)
    actions = ("retry_now",)
    readonly_fields = (
        "id",
        "subject",
        "key",
        "msg_id",
        "headers",
        "payload_text",
        "created",
        "available",
        "attempts",
        "last_error",
        "published",
    )
    fields = readonly_fields
    show_full_result_count = False  # no COUNT(*) of a large table on every page

    def has_add_permission(self, request: Any) -> bool:
        return False

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    @_display("state")
    def state(self, row: OutboxMessage) -> str:
        if row.published is not None:
            return "published"
        return "failing" if row.attempts else "pending"

    @_display("last error")
    def error(self, row: OutboxMessage) -> str:
        text = str(row.last_error)
        return text if len(text) <= 80 else text[:79] + "…"

    @_display("payload")
    def payload_text(self, row: OutboxMessage) -> str:
        data = row.payload_bytes()
        try:
            text = data.decode()
        except UnicodeDecodeError:
            return f"{len(data)} bytes (binary)"
        return text if len(text) <= _PREVIEW else text[:_PREVIEW] + f"… ({len(data)} bytes)"

    def has_retry_permission(self, request: Any) -> bool:
        # The rows are read-only for everyone; making them due again is for those Django
        # would let change them (superusers, or the syncmsg.change_outboxmessage permission).
        return bool(request.user.has_perm("syncmsg.change_outboxmessage"))

    @_action("Retry now (pending rows: publish at the next round)", ["retry"])
    def retry_now(self, request: Any, queryset: Any) -> None:
        pending = queryset.filter(published__isnull=True)
        count = pending.update(available=timezone.now())
        skipped = queryset.count() - count
        message = f"{count} pending row(s) will be published at the relay's next round."
        if skipped:
            message += f" {skipped} published row(s) left as they are."
        self.message_user(request, message, messages.SUCCESS)
