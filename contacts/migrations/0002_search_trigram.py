"""Trigram indexes for the contact search (contacts.selectors.contacts_search), PostgreSQL only.

The search is a case-insensitive substring match: Django writes ``UPPER("name"::text) LIKE UPPER(%s)``
for ``icontains`` and ``"raw_digits"::text LIKE %s`` for ``contains``; GIN indexes with pg_trgm's
``gin_trgm_ops`` on exactly those expressions answer them without scanning the table. They are built
CONCURRENTLY (contacts are written by every call). SQLite has neither pg_trgm nor GIN: nothing happens
there (``TrigramExtension`` itself does nothing off PostgreSQL) and the same queries scan.

Not in the models' Meta: a GIN index cannot be created on SQLite, and Django's state does not need it.
"""

from django.contrib.postgres.operations import TrigramExtension
from django.db import migrations

INDEXES = {
    "contact_name_trgm_idx": ("contacts_contact", 'UPPER("name"::text) gin_trgm_ops'),
    "contact_company_trgm_idx": ("contacts_contact", 'UPPER("company"::text) gin_trgm_ops'),
    "contact_email_trgm_idx": ("contacts_contact", 'UPPER("email"::text) gin_trgm_ops'),
    "phonenumber_digits_trgm_idx": ("contacts_phonenumber", '"raw_digits" gin_trgm_ops'),
    "phonenumber_e164_trgm_idx": ("contacts_phonenumber", '"e164" gin_trgm_ops'),
}


def create_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, (table, expression) in INDEXES.items():
        schema_editor.execute(f'CREATE INDEX CONCURRENTLY IF NOT EXISTS "{name}" ON "{table}" USING gin ({expression})')


def drop_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in INDEXES:
        schema_editor.execute(f'DROP INDEX CONCURRENTLY IF EXISTS "{name}"')


class Migration(migrations.Migration):

    atomic = False  # CREATE INDEX CONCURRENTLY cannot run inside a transaction

    dependencies = [
        ("contacts", "0001_initial"),
    ]

    operations = [
        TrigramExtension(),
        migrations.RunPython(create_indexes, drop_indexes),
    ]
