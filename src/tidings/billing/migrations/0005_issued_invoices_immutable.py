"""Issued invoices and credit notes are immutable in the database (PostgreSQL): an
UPDATE of a legal field, or a DELETE of one no erasure has put on a legal hold (the
retention job deletes it when the hold ends: its date is the application's clock, which
the tests move), is refused whatever runs it. Erasure may still detach the account and set keep_until; a
payment may still be recorded. Elsewhere (SQLite) the model refuses."""

from django.db import migrations

LEGAL = [
    "kind", "number", "sequence", "issued_at", "supplied_at", "currency", "language",
    "seller_name", "seller_address", "seller_vat_number", "seller_country", "buyer_kind", "billing_name",
    "billing_address", "billing_country", "vat_number", "reverse_charge", "net", "vat",
    "total", "amount_cents", "original_id", "status",
]  # fmt: skip

CHANGED = " OR ".join(f"NEW.{f} IS DISTINCT FROM OLD.{f}" for f in LEGAL)

CREATE = f"""
CREATE OR REPLACE FUNCTION billing_invoice_immutable() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF OLD.status = 'issued' AND OLD.keep_until IS NULL THEN
            RAISE EXCEPTION 'invoice % is issued: it is kept for the legal period', OLD.number
                USING ERRCODE = 'integrity_constraint_violation';
        END IF;
        RETURN OLD;
    END IF;
    IF OLD.status = 'issued' AND ({CHANGED}) THEN
        RAISE EXCEPTION 'invoice % is issued: correct it by a credit note', OLD.number
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END
$$ LANGUAGE plpgsql;
CREATE TRIGGER billing_invoice_immutable BEFORE UPDATE OR DELETE ON billing_invoice
    FOR EACH ROW EXECUTE FUNCTION billing_invoice_immutable();

CREATE OR REPLACE FUNCTION billing_invoiceline_immutable() RETURNS trigger AS $$
DECLARE
    parent billing_invoice%ROWTYPE;
BEGIN
    SELECT * INTO parent FROM billing_invoice WHERE id = OLD.invoice_id;
    IF FOUND AND parent.status = 'issued'
       AND (TG_OP = 'UPDATE' OR parent.keep_until IS NULL) THEN
        RAISE EXCEPTION 'the lines of invoice % are issued', parent.number
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
    RETURN NEW;
END
$$ LANGUAGE plpgsql;
CREATE TRIGGER billing_invoiceline_immutable BEFORE UPDATE OR DELETE ON billing_invoiceline
    FOR EACH ROW EXECUTE FUNCTION billing_invoiceline_immutable();
"""

DROP = """
DROP TRIGGER IF EXISTS billing_invoiceline_immutable ON billing_invoiceline;
DROP FUNCTION IF EXISTS billing_invoiceline_immutable();
DROP TRIGGER IF EXISTS billing_invoice_immutable ON billing_invoice;
DROP FUNCTION IF EXISTS billing_invoice_immutable();
"""


def _on_postgres(sql):  # type: ignore[no-untyped-def]
    def run(apps, schema_editor):  # type: ignore[no-untyped-def]
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(sql, params=None)

    return run


class Migration(migrations.Migration):
    dependencies = [("billing", "0004_invoices_numbering_lines")]

    operations = [migrations.RunPython(_on_postgres(CREATE), _on_postgres(DROP))]
