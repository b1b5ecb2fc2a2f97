"""`tidings up` and `tidings migrate` publish the policy through this command."""

from io import StringIO

from django.core.management import call_command

from tidings.privacy.models import PolicyVersion


def publish() -> str:
    out = StringIO()
    call_command("publishpolicy", stdout=out)
    return out.getvalue()


def test_command_publishes_the_first_version_then_reports_it_unchanged(db):
    assert "Privacy policy version 1 published" in publish()
    assert "Privacy policy unchanged: version 1." in publish()
    assert PolicyVersion.objects.count() == 1


def test_command_publishes_a_new_version_after_a_configuration_change(db, settings):
    publish()
    settings.OPERATOR = {**settings.OPERATOR, "privacy_email": "dpo@elsewhere.example"}

    out = publish()

    assert "Privacy policy version 2 published" in out
    assert "Who we are and how to reach us" in out
