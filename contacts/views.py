"""Contact pages: list + search, detail, create (screen-pop "Create contact"), edit, merge."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from calls.visibility import contact_visible_to, contacts_visible_to

from .forms import ContactForm, MergeForm
from .models import Contact
from .selectors import contact_find_by_number, contacts_search, user_can_merge_contacts
from .services import contact_create, contact_merge, contact_name, contact_update

PAGE_SIZE = 50
# Merged contacts merged again: how far a tombstone's link is followed.
MERGE_HOPS = 20


@login_required
def contact_list(request: HttpRequest) -> HttpResponse:
    # NUL cannot reach PostgreSQL in a query parameter (a DataError): nobody types it anyway.
    query = request.GET.get("q", "").replace("\x00", "").strip()[:100]
    contacts = contacts_visible_to(
        request.user,
        Contact.objects.current().select_related("personal_manager").prefetch_related("numbers"),
    )
    found = contacts_search(queryset=contacts, query=query)
    page = Paginator(found, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "contacts/contact_list.html", {"page": page, "query": query})


@login_required
def contact_detail(request: HttpRequest, pk: int) -> HttpResponse:
    contact = get_object_or_404(
        Contact.objects.select_related("personal_manager").prefetch_related("numbers"), pk=pk
    )
    current = contact
    for _hop in range(MERGE_HOPS):
        if current.merged_into_id is None:
            break
        current = Contact.objects.get(pk=current.merged_into_id)
    # Team mode: a tombstone of another team's contact is as missing as the contact itself (its redirect
    # would tell that it existed, and where it went).
    if current.merged_into_id is not None or not contact_visible_to(request.user, current):
        raise Http404("No such contact")
    if current.pk != contact.pk:
        # A tombstone: old links (call records, bookmarks) lead to the contact it was merged into.
        return redirect("contacts:detail", pk=current.pk)
    merge_form = MergeForm(initial={"source": contact.pk}) if user_can_merge_contacts(request.user) else None
    return render(request, "contacts/contact_detail.html", {"contact": contact, "merge_form": merge_form})


def _save(form: ContactForm, contact: Contact | None, user: Any) -> Contact | None:
    """Run the service for a valid form; put a service's ValidationError (a race) back on the form."""
    data = form.cleaned_data
    name, company = data.get("name") or "", data.get("company") or ""
    email, notes = data.get("email") or "", data.get("notes") or ""
    manager, numbers = data.get("personal_manager"), data.get("numbers") or []
    try:
        if contact is None:
            return contact_create(
                name=name,
                company=company,
                email=email,
                notes=notes,
                personal_manager=manager,
                numbers=numbers,
                created_by=user,
            )
        return contact_update(
            contact=contact,
            name=name,
            company=company,
            email=email,
            notes=notes,
            personal_manager=manager,
            numbers=numbers,
        )
    except ValidationError as exc:
        if hasattr(exc, "error_dict"):
            for field, errors in exc.error_dict.items():
                form.add_error(field if field in form.fields else None, errors)
        else:
            form.add_error("numbers", exc)
        return None


@login_required
def contact_create_view(request: HttpRequest) -> HttpResponse:
    existing = None
    if request.method == "POST":
        form = ContactForm(request.POST, user=request.user)
        if form.is_valid() and (contact := _save(form, None, request.user)) is not None:
            messages.success(request, _("Contact created."))
            return redirect(contact)
    else:
        # ?number=… comes from the screen pop's "Create contact" (and ?name=… when the PBX knew one).
        number = request.GET.get("number", "").strip()[:100]
        form = ContactForm(
            initial={"numbers": number, "name": request.GET.get("name", "").strip()[:200]}, user=request.user
        )
        # The number may have been saved since the pop showed it as unknown: offer the existing contact
        # (when the user may see it).
        existing = contact_find_by_number(number=number) if number else None
        if existing is not None and not contact_visible_to(request.user, existing):
            existing = None
    return render(
        request, "contacts/contact_form.html", {"form": form, "contact": None, "existing": existing}
    )


@require_POST
def contact_name_view(request: HttpRequest, pk: int) -> JsonResponse:
    """POST name=…&company=… (CSRF, JSON): the call card names the contact made from a call in place."""
    if not request.user.is_authenticated:
        return JsonResponse({"ok": False, "error": _("Your session has ended. Log in again.")}, status=401)
    contact = contacts_visible_to(request.user, Contact.objects.current()).filter(pk=pk).first()
    if contact is None:
        return JsonResponse({"ok": False, "error": _("No such contact.")}, status=404)
    try:
        contact_name(
            contact=contact,
            name=request.POST.get("name", "").replace("\x00", ""),
            company=request.POST.get("company", "").replace("\x00", ""),
        )
    except ValidationError as error:
        errors = {field: [str(text) for text in texts] for field, texts in error.message_dict.items()}
        return JsonResponse(
            {
                "ok": False,
                "errors": errors,
                "error": " ".join(text for texts in errors.values() for text in texts),
            },
            status=400,
        )
    return JsonResponse(
        {"ok": True, "contact": {"id": contact.pk, "name": contact.name, "company": contact.company}}
    )


@login_required
def contact_edit(request: HttpRequest, pk: int) -> HttpResponse:
    contact = get_object_or_404(contacts_visible_to(request.user, Contact.objects.current()), pk=pk)
    if request.method == "POST":
        form = ContactForm(request.POST, instance=contact, user=request.user)
        if form.is_valid() and _save(form, contact, request.user) is not None:
            messages.success(request, _("Contact saved."))
            return redirect(contact)
    else:
        form = ContactForm(instance=contact, user=request.user)
    return render(request, "contacts/contact_form.html", {"form": form, "contact": contact})


@login_required
@require_POST
def contact_merge_view(request: HttpRequest) -> HttpResponse:
    if not user_can_merge_contacts(request.user):
        raise PermissionDenied
    form = MergeForm(request.POST, user=request.user)
    if not form.is_valid():
        source_pk = request.POST.get("source", "")
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, str(error))
        if source_pk.isdigit() and form.contacts.filter(pk=source_pk).exists():
            return redirect("contacts:detail", pk=int(source_pk))
        return redirect("contacts:list")
    source: Contact = form.cleaned_data["source"]
    target: Contact = form.cleaned_data["target"]
    label = str(source)  # before the merge moves its numbers away
    try:
        contact_merge(target=target, source=source)
    except ValidationError as exc:
        for message in exc.messages:
            messages.error(request, message)
        return redirect("contacts:detail", pk=source.pk)
    messages.success(
        request,
        _("Contact “%(source)s” was merged into this one.") % {"source": label},
    )
    return redirect("contacts:detail", pk=target.pk)
