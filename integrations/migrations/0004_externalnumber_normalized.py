"""ExternalNumber.normalized: the line's lookup key (contacts.phones.line_key), for every existing row."""

from __future__ import annotations

from typing import Any

from django.db import migrations, models

from contacts.phones import line_key

BATCH = 500


def fill_normalized(apps: Any, schema_editor: Any) -> None:
    # The historical model has no save() of ours: the key is computed here, as the model computes it.
    ExternalNumber = apps.get_model("integrations", "ExternalNumber")
    rows = []
    for row in ExternalNumber.objects.only("pk", "number").iterator(chunk_size=BATCH):
        row.normalized = line_key(row.number)
        rows.append(row)
        if len(rows) >= BATCH:
            ExternalNumber.objects.bulk_update(rows, ["normalized"])
            rows = []
    if rows:
        ExternalNumber.objects.bulk_update(rows, ["normalized"])


class Migration(migrations.Migration):
    dependencies = [
        ("integrations", "0003_notification_queue"),
    ]

    operations = [
        migrations.AddField(
            model_name="externalnumber",
            name="normalized",
            field=models.CharField(
                blank=True, default="", editable=False, max_length=32, verbose_name="normalized number"
            ),
        ),
        migrations.RunPython(fill_normalized, migrations.RunPython.noop),
        migrations.AddIndex(
            model_name="externalnumber",
            index=models.Index(fields=["integration", "normalized"], name="external_number_norm_idx"),
        ),
    ]
