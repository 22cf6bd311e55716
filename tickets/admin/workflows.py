"""Console workflows on the ticket admin (``TicketAdmin`` mixes them in): open a ticket for a customer (a call,
a visit, an email forwarded by hand), merge two tickets of one customer, assign or re-prioritise many
tickets at once, and the managers' CSV export of the ticket list.

Views parse, call one service or selector, and render; every ticket is reached through the user's scope
(``tickets.selectors``) and changed through ``tickets.services``. Admin URLs are CSRF-protected
(``admin_view``); what a person can repeat quickly (opening tickets, exporting) is rate limited.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from itertools import islice

from asgiref.sync import sync_to_async
from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from supportflow import ratelimit
from supportflow.spreadsheet import csv_lines
from tickets import selectors, services
from tickets.models import Department, Priority, Ticket
from tickets.roles import user_is_manager

NEW_TICKET_TEMPLATE = "admin/tickets/ticket/new_ticket.html"
MERGE_TEMPLATE = "admin/tickets/ticket/merge.html"
BULK_TEMPLATE = "admin/tickets/ticket/bulk_action.html"
NEW_TICKET_RATE = getattr(settings, "CONSOLE_NEW_TICKET_RATE", "30/600")  # per agent
EXPORT_RATE = getattr(settings, "CONSOLE_EXPORT_RATE", "10/600")  # per manager
EXPORT_CHUNK = getattr(settings, "CONSOLE_EXPORT_CHUNK", 2000)
REPORTED_FAILURES = 10
REPORTED_DONE = 20

EXPORT_HEADER = (
    gettext_lazy("Reference"),
    gettext_lazy("Subject"),
    gettext_lazy("Customer"),
    gettext_lazy("Email"),
    gettext_lazy("Status"),
    gettext_lazy("Priority"),
    gettext_lazy("Department"),
    gettext_lazy("Assignee"),
    gettext_lazy("Channel"),
    gettext_lazy("Created"),
    gettext_lazy("First response"),
    gettext_lazy("Resolved"),
    gettext_lazy("SLA breached"),
    gettext_lazy("CSAT"),
)


# --- forms ------------------------------------------------------------------------------------------

TEXT = forms.TextInput(attrs={"class": "vTextField"})


class NewTicketForm(forms.Form):
    channel = forms.ChoiceField(label=gettext_lazy("How the customer reached you"))
    customer_email = forms.EmailField(
        label=gettext_lazy("Customer's email"), required=False, widget=forms.EmailInput(attrs={"class": "vTextField"})
    )
    customer_name = forms.CharField(label=gettext_lazy("Customer's name"), max_length=200, required=False, widget=TEXT)
    subject = forms.CharField(
        label=gettext_lazy("Subject"),
        max_length=services.SUBJECT_MAX_LENGTH,
        required=False,
        widget=TEXT,
        help_text=gettext_lazy("Leave empty to use the first line of the message."),
    )
    body = forms.CharField(
        label=gettext_lazy("What the customer said"),
        max_length=services.MESSAGE_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 8, "class": "vLargeTextField"}),
        help_text=gettext_lazy("In the customer's words: it is the first message of the conversation."),
    )
    department = forms.ModelChoiceField(label=gettext_lazy("Queue"), queryset=Department.objects.none())
    priority = forms.ChoiceField(label=gettext_lazy("Priority"), choices=Priority.choices, initial=Priority.NORMAL)
    assign_to_me = forms.BooleanField(label=gettext_lazy("Assign to me"), required=False, initial=True)

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        labels = dict(Ticket.Channel.choices)
        self.fields["channel"].choices = [(value, labels[value]) for value in services.CONSOLE_CHANNELS]
        self.fields["department"].queryset = selectors.departments_served_by(user=user)


class MergeForm(forms.Form):
    into = forms.CharField(
        label=gettext_lazy("Merge into ticket"),
        max_length=20,
        help_text=gettext_lazy("The reference of the ticket to keep, e.g. SF-000123."),
    )


class AssignForm(forms.Form):
    assignee = forms.ModelChoiceField(label=gettext_lazy("Assign to"), queryset=None)

    def __init__(self, *args, assignees, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["assignee"].queryset = assignees
        self.fields["assignee"].label_from_instance = lambda u: (
            f"{u.get_full_name()} ({u.get_username()})" if u.get_full_name() else u.get_username()
        )


class PriorityForm(forms.Form):
    priority = forms.ChoiceField(label=gettext_lazy("Priority"), choices=Priority.choices)


# --- the admin mixin -------------------------------------------------------------------------------


class ConsoleWorkflowsMixin:
    """What ``TicketAdmin`` gains: the "New ticket" page (the admin's add view), the merge page, the
    bulk actions and the CSV export. Expects a ``ModelAdmin`` whose ``get_queryset`` is the user's scope."""

    # --- permissions

    def has_assign_others_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("tickets.assign_others_ticket")

    def has_export_permission(self, request: HttpRequest) -> bool:
        return user_is_manager(request.user)

    # --- URLs

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("export.csv", view(self.export_view), name="tickets_ticket_export"),
            path("<int:ticket_id>/merge/", view(self.merge_view), name="tickets_ticket_merge"),
            *super().get_urls(),
        ]

    def _page(self, request: HttpRequest, template: str, context: dict, *, status: int = 200) -> TemplateResponse:
        context = {**self.admin_site.each_context(request), "opts": self.opts, **context}
        return TemplateResponse(request, template, context, status=status)

    # --- a ticket opened for a customer

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context=None) -> HttpResponse:
        """The "New ticket" page: the customer's words from a call, a visit or a forwarded email."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = NewTicketForm(request.POST or None, user=request.user)
        if request.method != "POST":
            return self._new_ticket_page(request, form)
        if not form.is_valid():
            return self._new_ticket_page(request, form, status=400)
        verdict = ratelimit.hit("console-new-ticket", str(request.user.pk), ratelimit.parse(NEW_TICKET_RATE))
        if not verdict.allowed:
            form.add_error(None, _("Too many new tickets at once; try again in %(s)s s.") % {"s": verdict.retry_after})
            return self._new_ticket_page(request, form, status=429)
        try:
            ticket = services.ticket_open_for_customer(actor=request.user, **form.cleaned_data)
        except services.TicketRuleError as exc:
            form.add_error(None, str(exc))
            return self._new_ticket_page(request, form, status=400)
        self.message_user(
            request,
            _("%(reference)s opened for %(customer)s.") % {"reference": ticket.reference, "customer": ticket.customer},
            messages.SUCCESS,
        )
        return self._change_page(ticket)

    def render_change_form(self, request: HttpRequest, context, *args, **kwargs):
        """No "Save and add another" on a ticket's page: a new ticket is a customer's conversation, not a row."""
        return super().render_change_form(request, {**context, "show_save_and_add_another": False}, *args, **kwargs)

    def _new_ticket_page(self, request: HttpRequest, form: NewTicketForm, *, status: int = 200) -> TemplateResponse:
        return self._page(request, NEW_TICKET_TEMPLATE, {"title": _("New ticket"), "form": form}, status=status)

    # --- merge

    def merge_view(self, request: HttpRequest, ticket_id: int) -> HttpResponse:
        """Merge this ticket into another of the same customer (given by reference): the other is kept."""
        ticket = selectors.ticket_get_for_user(user=request.user, pk=ticket_id)
        if not self.has_change_permission(request, ticket):
            raise PermissionDenied
        if ticket.merged_into_id:
            return self.merged_ticket_redirect(request, ticket.pk) or self._change_page(ticket)
        form = MergeForm(request.POST or None, initial={"into": request.GET.get("into", "")})
        if request.method == "POST" and form.is_valid():
            reference = form.cleaned_data["into"]
            try:
                primary = selectors.ticket_get_by_reference_for_user(user=request.user, reference=reference)
                primary = services.ticket_merge(primary=primary, secondary=ticket, actor=request.user)
            except Http404:
                form.add_error("into", _("No ticket %(reference)s in your queues.") % {"reference": reference})
            except services.TicketRuleError as exc:
                form.add_error(None, str(exc))
            else:
                return self._to_primary(request, ticket, primary, just_merged=True)
        context = {
            "title": _("Merge %(reference)s") % {"reference": ticket.reference},
            "ticket": ticket,
            "form": form,
            "candidates": selectors.ticket_merge_candidates(ticket=ticket, user=request.user),
        }
        return self._page(request, MERGE_TEMPLATE, context, status=400 if form.is_bound else 200)

    def merged_ticket_redirect(self, request: HttpRequest, object_id) -> HttpResponse | None:
        """Opening a merged ticket opens the ticket it was merged into, with a notice (``None``: not merged,
        not a ticket this user sees, or the other ticket is outside their queues)."""
        scope = self.get_queryset(request)
        try:
            ticket = scope.filter(pk=object_id, merged_into__isnull=False).only("pk", "reference", "merged_into")
            ticket = ticket.first()
        except (ValueError, TypeError):
            return None
        if ticket is None:
            return None
        primary = selectors.ticket_follow_merge(ticket=ticket, scope=scope)
        if primary.pk == ticket.pk:
            return None
        return self._to_primary(request, ticket, primary, just_merged=False)

    def _to_primary(self, request: HttpRequest, secondary: Ticket, primary: Ticket, *, just_merged: bool):
        refs = {"secondary": secondary.reference, "primary": primary.reference}
        if just_merged:
            self.message_user(request, _("%(secondary)s was merged into %(primary)s.") % refs, messages.SUCCESS)
        else:
            text = _("%(secondary)s was merged into %(primary)s; this is the merged conversation.") % refs
            self.message_user(request, text, messages.INFO)
        return self._change_page(primary)

    def _change_page(self, ticket: Ticket) -> HttpResponseRedirect:
        return HttpResponseRedirect(reverse("admin:tickets_ticket_change", args=[ticket.pk]))

    @admin.action(description=gettext_lazy("Merge two tickets…"), permissions=["change"])
    def merge_two(self, request: HttpRequest, queryset):
        """Exactly two tickets of one customer: on to the merge page of the newer, the older one kept."""
        tickets = list(queryset.select_related("customer").order_by("created_at", "pk")[:3])
        if len(tickets) != 2:
            self.message_user(request, _("Select exactly two tickets to merge."), messages.ERROR)
            return None
        older, newer = tickets
        if older.customer_id != newer.customer_id:
            self.message_user(
                request,
                _("%(first)s and %(second)s are from different customers: only one customer's tickets can be merged.")
                % {"first": older.reference, "second": newer.reference},
                messages.ERROR,
            )
            return None
        url = reverse("admin:tickets_ticket_merge", args=[newer.pk])
        return HttpResponseRedirect(f"{url}?into={older.reference}")

    # --- bulk actions: each ticket through its service, every failure reported with its ticket

    def bulk_apply(self, request: HttpRequest, queryset, verb: str, change: Callable[[Ticket], object]) -> None:
        """Apply ``change`` to each ticket in its own transaction (the service's): a ticket is changed
        completely or not at all, a refusal stops nothing else, and the report names every ticket."""
        done, failed = [], []
        for ticket in queryset.order_by("pk"):
            try:
                change(ticket)
            except services.TicketRuleError as exc:
                failed.append(f"{ticket.reference}: {exc}")
            else:
                done.append(ticket.reference)
        if done:
            refs = ", ".join(done[:REPORTED_DONE]) + (" …" if len(done) > REPORTED_DONE else "")
            self.message_user(
                request,
                ngettext("%(verb)s: %(count)d ticket (%(refs)s).", "%(verb)s: %(count)d tickets (%(refs)s).", len(done))
                % {"verb": verb, "count": len(done), "refs": refs},
                messages.SUCCESS,
            )
        for error in failed[:REPORTED_FAILURES]:
            self.message_user(request, error, messages.ERROR)
        if len(failed) > REPORTED_FAILURES:
            more = len(failed) - REPORTED_FAILURES
            self.message_user(request, _("… and %(count)d more refused.") % {"count": more}, messages.ERROR)

    def _bulk_form(self, request: HttpRequest, queryset, form: forms.Form, *, action: str, title: str):
        """The page between choosing an action and applying it (the admin's own pattern): the form, the
        tickets it applies to, and the selection carried along."""
        context = {
            "title": title,
            "form": form,
            "action": action,
            "tickets": queryset.select_related("department", "assignee").order_by("pk")[:100],
            "count": queryset.count(),
            "selected": request.POST.getlist(admin.helpers.ACTION_CHECKBOX_NAME),
            "select_across": request.POST.get("select_across", "0"),
        }
        return self._page(request, BULK_TEMPLATE, context, status=400 if form.is_bound else 200)

    @admin.action(description=gettext_lazy("Assign to…"), permissions=["assign_others"])
    def assign_to(self, request: HttpRequest, queryset):
        """Assign the selected tickets to one agent who works every queue among them."""
        queues = queryset.order_by().values_list("department_id", flat=True).distinct()
        assignees = selectors.agents_serving(department_ids=list(queues))
        form = AssignForm(request.POST if "apply" in request.POST else None, assignees=assignees)
        if not form.is_valid():
            return self._bulk_form(request, queryset, form, action="assign_to", title=_("Assign tickets"))
        assignee = form.cleaned_data["assignee"]
        verb = _("Assigned to %(name)s") % {"name": assignee.get_username()}
        self.bulk_apply(
            request,
            queryset,
            verb,
            lambda t: services.ticket_assign(ticket=t, assignee=assignee, actor=request.user),
        )
        return None

    @admin.action(description=gettext_lazy("Set priority…"), permissions=["change"])
    def set_priority(self, request: HttpRequest, queryset):
        form = PriorityForm(request.POST if "apply" in request.POST else None)
        if not form.is_valid():
            return self._bulk_form(request, queryset, form, action="set_priority", title=_("Set priority"))
        priority = form.cleaned_data["priority"]
        verb = _("Priority set to %(priority)s") % {"priority": Priority(priority).label.lower()}
        self.bulk_apply(
            request,
            queryset,
            verb,
            lambda t: services.ticket_update_triage(ticket=t, actor=request.user, priority=priority),
        )
        return None

    # --- the managers' export

    def export_view(self, request: HttpRequest) -> HttpResponse:
        """The ticket list as it is filtered, searched and sorted, as CSV, streamed from a server-side
        cursor (an async iterator: under ASGI a sync one would be read whole before sending)."""
        if not self.has_export_permission(request):
            return HttpResponse(_("The ticket export is for managers."), status=403, content_type="text/plain")
        verdict = ratelimit.hit("console-export", str(request.user.pk), ratelimit.parse(EXPORT_RATE))
        if not verdict.allowed:
            text = _("Too many exports; try again in %(s)s s.") % {"s": verdict.retry_after}
            response = HttpResponse(text, status=429, content_type="text/plain")
            response["Retry-After"] = str(verdict.retry_after)
            return response
        try:
            changelist = self.get_changelist_instance(request)
        except IncorrectLookupParameters:
            return HttpResponse(_("Unknown filter in the list's address."), status=400, content_type="text/plain")
        rows = selectors.ticket_export_rows(tickets=changelist.queryset, chunk_size=EXPORT_CHUNK)
        response = StreamingHttpResponse(csv_stream(rows, EXPORT_CHUNK), content_type="text/csv; charset=utf-8")
        stamp = timezone.now().strftime("%Y%m%d-%H%M")
        response["Content-Disposition"] = f'attachment; filename="supportflow-tickets-{stamp}.csv"'
        return response


async def csv_stream(rows: Iterator[tuple], chunk: int) -> AsyncIterator[str]:
    """The header, then the rows ``chunk`` at a time, each chunk read in the request's own thread (where
    its database connection and server-side cursor live)."""
    yield csv_lines([[str(name) for name in EXPORT_HEADER]])
    read = sync_to_async(lambda: list(islice(rows, chunk)), thread_sensitive=True)
    while batch := await read():
        yield csv_lines(batch)
