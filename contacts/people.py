"""How the CRM names a user to people: the full name, else the login ("Мария Иванова", "ivanova").

One rule for the pages, the desk, the API, the admin and the messages that name someone; a select of users
(``PersonChoiceField``) names its choices the same way."""

from __future__ import annotations

from typing import Any

from django import forms


def person_name(user: Any) -> str:
    """The user's full name, else the login; "" for nobody."""
    if user is None:
        return ""
    return str(user.get_full_name() or user.get_username())


class PersonChoiceField(forms.ModelChoiceField):  # type: ignore[type-arg]
    """A select of users, each by name."""

    def label_from_instance(self, obj: Any) -> str:
        return person_name(obj)
