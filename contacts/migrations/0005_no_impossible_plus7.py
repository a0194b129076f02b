"""Numbers stored as a +7 code that does not exist (+7 0…, +7 1…, +7 2…: contacts.phones._unassigned_in_zone_7)
become what they are now read as: no phone number, kept as typed and found by their digits.

Before, Belarus's `8 (029) 123-45-67` was stored as +70291234567: shown `+7 0291234567`, dialled as a number
nobody has. A row whose digits another number-less row holds already (the unique index) stays as it was.
"""

from __future__ import annotations

from typing import Any

from django.db import migrations

from contacts import phones


def forget_impossible_e164(apps: Any, schema_editor: Any) -> None:
    PhoneNumber = apps.get_model("contacts", "PhoneNumber")
    rows = PhoneNumber.objects.filter(e164__regex=r"^\+7[012][0-9]{9}$").only("pk", "raw", "raw_digits", "e164")
    for row in rows.iterator(chunk_size=500):
        if phones.normalize(row.raw):
            continue  # the number reads as a phone number after all: left alone
        digits = phones.digits_only(row.raw) or row.raw_digits
        if not digits or PhoneNumber.objects.filter(e164="", raw_digits=digits).exists():
            continue
        row.e164, row.raw_digits = "", digits
        row.save(update_fields=["e164", "raw_digits"])


class Migration(migrations.Migration):
    dependencies = [
        ("contacts", "0004_phone_extension"),
    ]

    operations = [
        migrations.RunPython(forget_impossible_e164, migrations.RunPython.noop, elidable=True),
    ]
