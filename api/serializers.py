"""What the API answers and accepts. Field descriptions are the schema's (Swagger UI at /api/docs/)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar

from django.urls import reverse
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from calls.dates import validate_moment
from calls.models import Call, CallbackTask, CallLeg, CallResult, FollowUpTask, Recording, RoutingDecision
from contacts.forms import MAX_NUMBERS
from contacts.models import Contact, PhoneNumber
from contacts.people import person_name


class CallLegSerializer(serializers.ModelSerializer[CallLeg]):
    leg_id = serializers.CharField(read_only=True, help_text="The PBX's Call-ID of this leg.")
    workplace_sip_id = serializers.SerializerMethodField(help_text="SIP ID of the workplace it rang.")
    user = serializers.SerializerMethodField(help_text="Id of the user working at that workplace.")

    class Meta:
        model = CallLeg
        fields = [
            "leg_id",
            "direction",
            "is_line_leg",
            "caller_id",
            "callee_id",
            "workplace",
            "workplace_sip_id",
            "user",
            "last_state",
            "started_at",
            "offered_at",
            "connected_at",
            "finished_at",
            "duration",
            "reason",
            "reason_code",
        ]
        read_only_fields = fields

    def get_workplace_sip_id(self, leg: CallLeg) -> str | None:
        return leg.workplace.sip_id if leg.workplace else None

    def get_user(self, leg: CallLeg) -> int | None:
        return leg.workplace.user_id if leg.workplace else None


class RoutingDecisionSerializer(serializers.ModelSerializer[RoutingDecision]):
    summary = serializers.CharField(
        read_only=True, help_text="The decision in words, as the call page shows it."
    )

    class Meta:
        model = RoutingDecision
        fields = [
            "decision",
            "reason",
            "summary",
            "manager",
            "target_workplace",
            "target_sip_id",
            "decided_at",
            "sent_at",
            "command",
        ]
        read_only_fields = fields


class RecordingSerializer(serializers.ModelSerializer[Recording]):
    status_label = serializers.CharField(source="get_status_display", read_only=True)
    audio_url = serializers.SerializerMethodField(
        help_text="Where the stored file is served (needs the permission to listen); null until stored."
    )

    class Meta:
        model = Recording
        fields = [
            "id",
            "call",
            "status",
            "status_label",
            "size",
            "duration_seconds",
            "sha256",
            "stored_at",
            "mtt_expires_at",
            "created_at",
            "audio_url",
        ]
        read_only_fields = fields

    def get_audio_url(self, recording: Recording) -> str | None:
        if recording.status != Recording.Status.STORED:
            return None
        return reverse("api:recording-audio", args=[recording.pk])


class CallSerializer(serializers.ModelSerializer[Call]):
    status_label = serializers.CharField(
        source="get_status_display", read_only=True, help_text="The status in words."
    )
    direction_label = serializers.CharField(source="get_direction_display", read_only=True)
    contact_name = serializers.SerializerMethodField(help_text="The client's name, as the CRM shows it.")
    operator_name = serializers.SerializerMethodField(help_text="Who took the call.")
    legs = CallLegSerializer(many=True, read_only=True, help_text="Every leg (Call-ID) of the call.")
    routing_decisions = RoutingDecisionSerializer(
        many=True, read_only=True, help_text="What the CRM did with the parked call (personal manager)."
    )
    recordings = serializers.PrimaryKeyRelatedField(many=True, read_only=True)
    result_name = serializers.SerializerMethodField(
        help_text="What the call came to (the wrap-up), in words."
    )

    class Meta:
        model = Call
        fields = [
            "id",
            "direction",
            "direction_label",
            "status",
            "status_label",
            "client_number",
            "contact",
            "contact_name",
            "line",
            "line_number",
            "workplace",
            "operator",
            "operator_name",
            "initiated_by",
            "started_at",
            "answered_at",
            "ended_at",
            "wait_seconds",
            "talk_seconds",
            "end_reason",
            "result",
            "result_name",
            "comment",
            "wrapped_up_by",
            "wrapped_up_at",
            "legs",
            "routing_decisions",
            "recordings",
        ]
        read_only_fields = fields

    def get_contact_name(self, call: Call) -> str:
        return str(call.contact) if call.contact else ""

    def get_operator_name(self, call: Call) -> str:
        return person_name(call.operator)

    def get_result_name(self, call: Call) -> str:
        return call.result.name if call.result else ""


class CallResultSerializer(serializers.ModelSerializer[CallResult]):
    class Meta:
        model = CallResult
        fields = ["id", "name", "position", "is_active"]
        read_only_fields = fields


class MomentField(serializers.DateTimeField):
    """An ISO 8601 time within calls.dates' range. Checked as parsed, before DRF puts it in the current
    time zone: that step itself overflows near year 1 or 9999 (an OverflowError, or DRF's own words)."""

    def enforce_timezone(self, value: datetime) -> datetime:
        validate_moment(value)
        return super().enforce_timezone(value)


# A field name is repeated in a refusal up to this many characters, and at most this many of them.
UNKNOWN_SHOWN = 40
UNKNOWN_MAX = 10


class StrictInputSerializer(serializers.Serializer[Any]):
    """A body's keys must be fields it writes (or, ``tolerated``, fields of the answer a client may send back
    unchanged); any other — a typo such as "phone" for "numbers", "coment" — is a 400 naming it, rather than
    dropped while the rest is saved."""

    tolerated: ClassVar[tuple[str, ...]] = ()

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        sent = self.initial_data if isinstance(self.initial_data, Mapping) else {}
        unknown = [str(key) for key in sent if key not in self.fields and key not in self.tolerated]
        if unknown:
            known = ", ".join(self.fields)
            raise serializers.ValidationError(
                {
                    key[:UNKNOWN_SHOWN]: [_("No such field. The fields are: %(fields)s.") % {"fields": known}]
                    for key in unknown[:UNKNOWN_MAX]
                }
            )
        return attrs


class WrapUpSerializer(StrictInputSerializer):
    """The wrap-up of a call, as the card's form: a result, a comment, an optional follow-up task."""

    result = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=1,
        help_text="Id of a call result (GET /api/v1/call-results/).",
    )
    comment = serializers.CharField(required=False, allow_blank=True, max_length=5000)
    follow_up_at = MomentField(
        required=False,
        allow_null=True,
        help_text="When to follow up (up to 2100-12-31), not passed: at most 5 minutes before this minute.",
    )
    follow_up_for = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, help_text="User id of who follows up (default: you)."
    )
    follow_up_note = serializers.CharField(
        required=False, allow_blank=True, max_length=2000, help_text="What to do: needed with follow_up_at."
    )


class FollowUpTaskSerializer(serializers.ModelSerializer[FollowUpTask]):
    is_open = serializers.BooleanField(read_only=True)

    class Meta:
        model = FollowUpTask
        fields = [
            "id",
            "call",
            "contact",
            "assignee",
            "due_at",
            "note",
            "is_open",
            "created_by",
            "created_at",
            "done_at",
            "done_by",
        ]
        read_only_fields = fields


class PhoneNumberSerializer(serializers.ModelSerializer[PhoneNumber]):
    display = serializers.CharField(read_only=True, help_text="The number for people: +7 921 946-27-61.")
    kind = serializers.CharField(read_only=True, help_text="mobile, work, other, or empty (not said).")

    class Meta:
        model = PhoneNumber
        fields = ["e164", "raw", "display", "kind"]
        read_only_fields = fields


class ContactSerializer(serializers.ModelSerializer[Contact]):
    numbers = PhoneNumberSerializer(many=True, read_only=True)
    email = serializers.CharField(read_only=True, help_text="An e-mail address, or empty.")
    personal_manager_name = serializers.SerializerMethodField()

    class Meta:
        model = Contact
        fields = [
            "id",
            "name",
            "company",
            "email",
            "notes",
            "numbers",
            "personal_manager",
            "personal_manager_name",
            "source",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_personal_manager_name(self, contact: Contact) -> str:
        return person_name(contact.personal_manager)


class ContactWriteSerializer(StrictInputSerializer):
    """A new contact, or the fields to change (PATCH: only those sent)."""

    tolerated = ("id", "personal_manager_name", "source", "created_at", "updated_at")

    name = serializers.CharField(required=False, allow_blank=True, max_length=200)
    company = serializers.CharField(required=False, allow_blank=True, max_length=200)
    email = serializers.CharField(required=False, allow_blank=True, max_length=254)
    notes = serializers.CharField(required=False, allow_blank=True, max_length=20_000)
    numbers = serializers.ListField(
        child=serializers.CharField(max_length=100, allow_blank=True),
        required=False,
        max_length=MAX_NUMBERS,
        help_text="Every number of the contact, in any format (+7 921 946-27-61, 89219462761, …); "
        "on PATCH the list replaces the contact's numbers.",
    )
    personal_manager = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=1,
        help_text="User id of the personal manager (needs the permission to change it).",
    )


class CallbackTaskSerializer(serializers.ModelSerializer[CallbackTask]):
    is_open = serializers.BooleanField(read_only=True)
    missed_calls = serializers.PrimaryKeyRelatedField(many=True, read_only=True)

    class Meta:
        model = CallbackTask
        fields = [
            "id",
            "client_number",
            "contact",
            "assignee",
            "missed_count",
            "first_missed_at",
            "last_missed_at",
            "missed_calls",
            "is_open",
            "closed_at",
            "closed_by",
            "closed_call",
            "created_at",
        ]
        read_only_fields = fields


class DialRequestSerializer(serializers.Serializer[Any]):
    number = serializers.CharField(
        max_length=100, help_text="The number to call, in any format: +7 921 946-27-61, 89219462761."
    )


class DialResultSerializer(serializers.Serializer[Any]):
    ok = serializers.BooleanField()
    code = serializers.CharField(help_text="placed, duplicate, or why not (no_workplace, invalid_number, …).")
    message = serializers.CharField(required=False, help_text="What happened, in words (when ok).")
    error = serializers.CharField(required=False, help_text="Why it failed, in words (when not ok).")
    call_id = serializers.IntegerField(required=False)
    duplicate = serializers.BooleanField(required=False)


class ErrorSerializer(serializers.Serializer[Any]):
    detail = serializers.CharField()


@extend_schema_field(
    {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}}}
)
class FieldErrors(serializers.DictField):
    """{field: [messages]}; "non_field_errors" for the whole object."""
