"""The REST API's views: thin, over the same selectors, services and visibility rules as the pages.

Every queryset goes through ``calls.visibility`` (README "Security model"): a row the user may not see
answers 404, as on the pages.
"""

from __future__ import annotations

from typing import Any, cast

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Prefetch, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.shortcuts import get_object_or_404
from django.template import loader
from django.utils.translation import gettext as _
from django.views.defaults import page_not_found
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
    extend_schema_view,
)
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from calls.callbacks import callback_take
from calls.dial import call_dial
from calls.models import Call, CallbackTask, CallLeg, CallResult, FollowUpTask, Recording
from calls.recordings.views import recording_file_response
from calls.visibility import (
    callbacks_visible_to,
    calls_visible_to,
    contacts_visible_to,
    recordings_visible_to,
    tasks_visible_to,
)
from calls.wrapup import WrapUpNotYours, call_wrap_up, follow_up_complete
from contacts.access import user_can_change_personal_manager
from contacts.forms import ContactForm
from contacts.models import Contact
from contacts.services import contact_create, contact_update

from .filters import CallbackTaskFilter, CallFilter, ContactFilter, FollowUpTaskFilter, RecordingFilter
from .permissions import ListensToRecordings, TokenScope
from .serializers import (
    CallbackTaskSerializer,
    CallResultSerializer,
    CallSerializer,
    ContactSerializer,
    ContactWriteSerializer,
    DialRequestSerializer,
    DialResultSerializer,
    ErrorSerializer,
    FollowUpTaskSerializer,
    RecordingSerializer,
    WrapUpSerializer,
)

NOT_FOUND = OpenApiResponse(ErrorSerializer, description="No such row, or one the user may not see.")


class _ViewSet(viewsets.GenericViewSet):  # type: ignore[type-arg]
    lookup_value_converter = "int"

    def options(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        # One row's OPTIONS answers as its GET would: 404 for a row that does not exist or that the user
        # may not see (team mode), as every other method does.
        if (self.lookup_url_kwarg or self.lookup_field) in kwargs:
            self.get_object()
        return super().options(request, *args, **kwargs)


@extend_schema_view(
    list=extend_schema(summary="Calls", description="The calls the user may see, newest first."),
    retrieve=extend_schema(summary="One call", responses={200: CallSerializer, 404: NOT_FOUND}),
)
class CallViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, _ViewSet):
    serializer_class = CallSerializer
    filterset_class = CallFilter

    def get_queryset(self) -> QuerySet[Call]:
        calls = Call.objects.select_related("contact", "operator", "line", "result").prefetch_related(
            "contact__numbers",
            Prefetch(
                "legs", queryset=CallLeg.objects.select_related("workplace").order_by("started_at", "leg_id")
            ),
            "routing_decisions",
            Prefetch("recordings", queryset=Recording.objects.order_by("created_at", "pk")),
        )
        return calls_visible_to(self.request.user, calls)

    @extend_schema(
        summary="Click-to-call",
        description=(
            "Rings the user's workplace, then connects it to the number (the same as the call button of the "
            "pages). Needs a read-write token and a workplace linked to the user. The answer is in words, "
            "with the same statuses as the page: 400 not a phone number, 409 no workplace, 422 MTT refused "
            "the call, 429 MTT busy (Retry-After), 502/503 MTT's answer unreadable, late or unreachable "
            "(`code` says whether the call may have been placed). A repeated request for the same number "
            "within seconds gets the first one's answer (`duplicate`)."
        ),
        request=DialRequestSerializer,
        responses={
            **{code: DialResultSerializer for code in (200, 409, 422, 429, 502, 503)},
            # A wrong number is answered like the others; a body that is not JSON by DRF's parser.
            400: PolymorphicProxySerializer(
                component_name="DialRefusal",
                serializers=[DialResultSerializer, ErrorSerializer],
                resource_type_field_name=None,
            ),
        },
        filters=False,
    )
    @action(detail=False, methods=["post"], url_path="dial", filterset_class=None, pagination_class=None)
    def dial(self, request: Request) -> Response:
        # Whatever was sent goes to call_dial, which answers a missing or wrong number in words (400), with
        # the same body as every other answer of this endpoint.
        sent = request.data.get("number") if isinstance(request.data, dict) else None
        result = call_dial(user=request.user, number=sent if isinstance(sent, str) else "")
        response = Response(result.as_json(), status=result.status)
        if result.retry_after is not None:
            response["Retry-After"] = str(max(1, round(result.retry_after)))
        return response

    @extend_schema(
        summary="Wrap up a call",
        description=(
            "What the call came to: a result, a comment, and optionally a follow-up task (the same as the "
            "card's wrap-up form). A second wrap-up replaces the first, and updates the open follow-up task "
            "it made. A wrap-up once saved may be changed only by its author, the call's operators and "
            "users with calls.change_others_wrap_up (supervisors); others get 403. Needs a read-write token."
        ),
        request=WrapUpSerializer,
        responses={
            200: CallSerializer,
            400: OpenApiResponse(description="Field errors, in words."),
            403: OpenApiResponse(description="The wrap-up is someone else's to change, in words."),
            404: NOT_FOUND,
        },
        filters=False,
    )
    @action(detail=True, methods=["post"], url_path="wrap-up", filterset_class=None)
    def wrap_up(self, request: Request, pk: int) -> Response:
        call = self.get_object()
        incoming = WrapUpSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        data = incoming.validated_data
        errors: dict[str, list[str]] = {}
        result = None
        if data.get("result") is not None:
            result = CallResult.objects.filter(pk=data["result"]).first()
            if result is None:
                errors["result"] = [_("No such result.")]
        person = None
        if data.get("follow_up_for") is not None:
            person = get_user_model()._default_manager.filter(pk=data["follow_up_for"]).first()
            if person is None:
                errors["follow_up_for"] = [_("You cannot give a task to this person.")]
        if errors:
            raise ValidationError(errors)
        try:
            call_wrap_up(
                call=call,
                user=request.user,
                result=result,
                comment=data.get("comment", ""),
                follow_up_at=data.get("follow_up_at"),
                follow_up_for=person,
                follow_up_note=data.get("follow_up_note", ""),
            )
        except DjangoValidationError as exc:
            raise ValidationError(exc.message_dict) from None
        except WrapUpNotYours as refused:
            raise PermissionDenied(refused.message) from None
        except DjangoPermissionDenied:
            raise Http404 from None
        return Response(CallSerializer(self.get_queryset().get(pk=call.pk)).data)


@extend_schema_view(
    list=extend_schema(summary="Call results", description="The list a wrap-up's result is chosen from."),
    retrieve=extend_schema(summary="One call result"),
)
class CallResultViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, _ViewSet):
    serializer_class = CallResultSerializer
    queryset = CallResult.objects.all()


@extend_schema_view(
    list=extend_schema(
        summary="Contacts",
        description="The contacts the user may see; `number` finds the one with a number in any format.",
    ),
    retrieve=extend_schema(summary="One contact", responses={200: ContactSerializer, 404: NOT_FOUND}),
)
class ContactViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    _ViewSet,
):
    serializer_class = ContactSerializer
    filterset_class = ContactFilter
    http_method_names = ["get", "post", "patch", "head", "options"]

    def get_queryset(self) -> QuerySet[Contact]:
        contacts = Contact.objects.current().select_related("personal_manager").prefetch_related("numbers")
        return contacts_visible_to(self.request.user, contacts)

    @extend_schema(
        summary="Create a contact",
        request=ContactWriteSerializer,
        responses={201: ContactSerializer, 400: OpenApiResponse(description="Field errors, in words.")},
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        contact = self._save(request, None)
        return Response(ContactSerializer(contact).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Change a contact",
        description="Only the fields sent change; `numbers` replaces the contact's numbers.",
        request=ContactWriteSerializer,
        responses={200: ContactSerializer, 400: OpenApiResponse(description="Field errors, in words.")},
    )
    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        contact = self._save(request, self.get_object())
        # Read again: get_object() prefetched the numbers as they were before the change.
        contact = (
            Contact.objects.select_related("personal_manager").prefetch_related("numbers").get(pk=contact.pk)
        )
        return Response(ContactSerializer(contact).data)

    def _save(self, request: Request, contact: Contact | None) -> Contact:
        """The contact form's rules (numbers in any format, a number of another team's contact refused
        without naming it, a name, company or number required), then the same services as the pages."""
        incoming = ContactWriteSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        sent: dict[str, Any] = dict(incoming.validated_data)
        if "personal_manager" in sent and not user_can_change_personal_manager(request.user):
            current = contact.personal_manager_id if contact is not None else None
            if sent["personal_manager"] != current:
                raise PermissionDenied(_("Only supervisors may change the personal manager."))
        data: dict[str, Any] = {}
        if contact is not None:
            data = {
                "name": contact.name,
                "company": contact.company,
                "email": contact.email,
                "notes": contact.notes,
                "personal_manager": contact.personal_manager_id or "",
                "numbers": "\n".join(n.display for n in contact.numbers.all()),
            }
        for key, value in sent.items():
            if key == "numbers":
                data["numbers"] = "\n".join(value)
            elif key == "personal_manager":
                data["personal_manager"] = value or ""
            else:
                data[key] = value
        form = ContactForm(data, instance=contact, user=request.user)
        if not form.is_valid():
            raise ValidationError(_form_errors(form))
        clean = form.cleaned_data
        fields: dict[str, Any] = {
            "name": clean.get("name") or "",
            "company": clean.get("company") or "",
            "email": clean.get("email") or "",
            "notes": clean.get("notes") or "",
            "personal_manager": clean.get("personal_manager"),
            "numbers": clean.get("numbers") or [],
        }
        try:
            if contact is None:
                return contact_create(**fields, created_by=request.user)
            return contact_update(contact=contact, **fields)
        except DjangoValidationError as exc:
            # A number stored by someone else between the check and the insert.
            raise ValidationError({"numbers": exc.messages}) from None


def _form_errors(form: ContactForm) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    for field, messages in form.errors.items():
        errors["non_field_errors" if field == "__all__" else field] = [str(m) for m in messages]
    return errors


class Mp3Renderer(BaseRenderer):
    """Lets a client ask for ``Accept: audio/mpeg``; the file itself is a FileResponse."""

    media_type = "audio/mpeg"
    format = "mp3"
    charset = None
    render_style = "binary"

    def render(
        self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None
    ) -> bytes:
        return JSONRenderer().render(data)


@extend_schema_view(
    list=extend_schema(summary="Recordings", description="Recordings of the calls the user may see."),
    retrieve=extend_schema(summary="One recording", responses={200: RecordingSerializer, 404: NOT_FOUND}),
)
class RecordingViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, _ViewSet):
    serializer_class = RecordingSerializer
    filterset_class = RecordingFilter

    def get_queryset(self) -> QuerySet[Recording]:
        return recordings_visible_to(self.request.user, Recording.objects.select_related("call"))

    @extend_schema(
        summary="A recording's audio",
        description=(
            "The stored mp3 (HTTP Range supported; `?download=1` as an attachment). Needs the permission to "
            "listen to recordings; every listen is in the recordings' access log, as on the pages."
        ),
        responses={
            (200, "audio/mpeg"): OpenApiTypes.BINARY,
            (206, "audio/mpeg"): OpenApiTypes.BINARY,
            403: ErrorSerializer,
            404: NOT_FOUND,
            416: ErrorSerializer,
        },
        filters=False,
    )
    @action(
        detail=True,
        methods=["get"],
        url_path="audio",
        permission_classes=[TokenScope, ListensToRecordings],
        renderer_classes=[JSONRenderer, Mp3Renderer],
        filterset_class=None,
    )
    def audio(self, request: Request, pk: int) -> HttpResponseBase:
        recording = get_object_or_404(self.get_queryset(), pk=pk, status=Recording.Status.STORED)
        # DRF's Request stands in for Django's HttpRequest (its attributes are the request's).
        response = recording_file_response(cast(HttpRequest, request), recording=recording)
        if response.status_code == status.HTTP_416_REQUESTED_RANGE_NOT_SATISFIABLE:
            # The page's answer is an empty text/html 416: the API's errors are words in JSON.
            return Response(
                {"detail": _("The requested range is outside the recording.")},
                status=response.status_code,
                headers={"Content-Range": response["Content-Range"], "Accept-Ranges": "bytes"},
            )
        return response


@extend_schema_view(
    list=extend_schema(summary="Callback tasks", description="“To call back”: tasks the user may see."),
    retrieve=extend_schema(
        summary="One callback task", responses={200: CallbackTaskSerializer, 404: NOT_FOUND}
    ),
)
class CallbackTaskViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, _ViewSet):
    serializer_class = CallbackTaskSerializer
    filterset_class = CallbackTaskFilter

    def get_queryset(self) -> QuerySet[CallbackTask]:
        tasks = CallbackTask.objects.select_related("contact", "assignee").prefetch_related("missed_calls")
        return callbacks_visible_to(self.request.user, tasks)

    @extend_schema(
        summary="Take a callback task",
        description=(
            "Assigns an open, unassigned task to the user (the first one wins). Taking an open task that is "
            "already the user's (a retry) answers 200 too; 409 when someone else has it or it is closed."
        ),
        request=None,
        responses={200: CallbackTaskSerializer, 404: NOT_FOUND, 409: ErrorSerializer},
        filters=False,
    )
    @action(detail=True, methods=["post"], url_path="take", filterset_class=None)
    def take(self, request: Request, pk: int) -> Response:
        task = self.get_object()
        if not callback_take(task_id=task.pk, user=request.user):
            return Response(
                {"detail": _("Someone else has taken this task, or it is closed.")},
                status=status.HTTP_409_CONFLICT,
            )
        task.refresh_from_db()
        return Response(CallbackTaskSerializer(task).data)


@extend_schema_view(
    list=extend_schema(
        summary="Follow-up tasks",
        description=(
            "Tasks from call wrap-ups the user may see: assigned to the people they see, or made by them."
        ),
    ),
    retrieve=extend_schema(
        summary="One follow-up task", responses={200: FollowUpTaskSerializer, 404: NOT_FOUND}
    ),
)
class FollowUpTaskViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, _ViewSet):
    serializer_class = FollowUpTaskSerializer
    filterset_class = FollowUpTaskFilter

    def get_queryset(self) -> QuerySet[FollowUpTask]:
        return tasks_visible_to(self.request.user, FollowUpTask.objects.all())

    @extend_schema(
        summary="Mark a follow-up task done",
        request=None,
        responses={200: FollowUpTaskSerializer, 404: NOT_FOUND},
        filters=False,
    )
    @action(detail=True, methods=["post"], url_path="complete", filterset_class=None)
    def complete(self, request: Request, pk: int) -> Response:
        task = self.get_object()
        try:
            task = follow_up_complete(task, request.user)
        except DjangoPermissionDenied:
            raise Http404 from None
        return Response(FollowUpTaskSerializer(task).data)


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponseBase:
    """The project's 400 (``handler400``: a request Django refuses before any view answers — a body over
    DATA_UPLOAD_MAX_MEMORY_SIZE, too many form fields, a host not allowed): in words, JSON under /api/,
    a page elsewhere; a body too large is a 413. Nothing of the request is read again."""
    too_big = isinstance(exception, RequestDataTooBig)
    status_code = 413 if too_big else 400
    if too_big:
        title, message = _("The request is too large"), _("The request body is larger than the CRM accepts.")
    elif isinstance(exception, TooManyFieldsSent):
        title, message = _("The request is too large"), _("The form sent has too many fields.")
    else:
        title, message = _("Bad request"), _("The CRM cannot read this request.")
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": message}, status=status_code)
    html = loader.render_to_string("400.html", {"title": title, "message": message})
    return HttpResponse(html, status=status_code)


def not_found(request: HttpRequest, exception: Exception) -> HttpResponseBase:
    """The project's 404 (``handler404``): JSON under /api/, as every other API answer; the page elsewhere."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": _("Not found.")}, status=404)
    return page_not_found(request, exception)
