"""The data map covers every model with personal data (DESIGN principle 1)."""

from django.apps import apps

from tidings.core import datamap


def test_every_model_with_personal_looking_fields_is_registered_or_declared_free():
    missing = []
    for model in apps.get_models():
        fields = datamap.looks_personal(model)
        if fields and not datamap.entry_for(model) and not datamap.is_declared_free(model):
            missing.append(f"{model._meta.label} ({', '.join(fields)})")
    assert not missing, "register these in the data map: " + "; ".join(missing)


def test_every_encrypted_field_is_named_as_personal_in_its_entry():
    for entry in datamap.entries():
        for f in entry.model._meta.concrete_fields:
            if getattr(f, "encrypted", False):
                assert f.name in entry.personal_fields, f"{entry.label}.{f.name}"


def test_the_detector_catches_an_unregistered_model():
    from django.db import models

    class Newsletter(models.Model):
        subscriber_email = models.EmailField()

        class Meta:
            app_label = "privacy"
            managed = False

        def __str__(self) -> str:
            return self.subscriber_email

    try:
        assert datamap.looks_personal(Newsletter) == ["subscriber_email"]
        assert datamap.entry_for(Newsletter) is None
    finally:
        apps.all_models["privacy"].pop("newsletter", None)
        apps.clear_cache()


def test_every_entry_declares_purpose_basis_retention_and_erasure():
    for entry in datamap.entries():
        assert entry.purpose and entry.retention and entry.category, entry.label
        assert isinstance(entry.legal_basis, datamap.LegalBasis)
        assert isinstance(entry.erase, datamap.Erasure)
