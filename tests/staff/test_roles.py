"""Roles: each staff member reaches only what their role grants (P7)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

from tests.factories import StaffFactory
from tidings.accounts.models import User
from tidings.accounts.staff_roles import StaffError, set_staff_role
from tidings.staff import roles
from tidings.staff.models import AuditEvent

pytestmark = pytest.mark.promise("P7")


def perms(user: User) -> set[str]:
    return User.objects.get(pk=user.pk).get_all_permissions()


def test_each_role_has_its_group_with_exactly_its_permissions(db):
    for role, names in roles.ROLE_PERMISSIONS.items():
        group = Group.objects.get(name=roles.ROLE_GROUPS[role])
        granted = {f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.all()}
        assert granted == set(names), role


def test_building_the_groups_twice_changes_nothing(db):
    roles.ensure_role_groups()
    roles.ensure_role_groups()
    assert Group.objects.filter(name__in=roles.ROLE_GROUPS.values()).count() == 4


def test_a_permission_added_by_hand_is_removed_by_the_next_migrate(db):
    from django.contrib.auth.models import Permission

    group = Group.objects.get(name=roles.ROLE_GROUPS["support"])
    group.permissions.add(Permission.objects.get(codename="view_auditevent"))
    roles.ensure_role_groups()
    assert not group.permissions.filter(codename="view_auditevent").exists()


def test_what_each_role_may_reach(db):
    support = StaffFactory(staff_role="support")
    billing = StaffFactory(staff_role="billing")
    officer = StaffFactory(staff_role="privacy_officer")
    admin = StaffFactory(staff_role="admin")

    assert {"accounts.change_user", "accounts.change_account"} <= perms(support)
    assert not {"billing.view_invoice", "staff.view_auditevent"} & perms(support)
    assert perms(billing) == {
        "accounts.view_account",
        "accounts.view_user_billing",
        "billing.view_invoice",
        "billing.add_invoice",
        "billing.view_offer",
        "billing.add_offer",
        "billing.change_offer",
        "billing.view_price",
        "billing.add_price",
        "billing.change_price",
        "billing.delete_price",
        "billing.view_order",
        "billing.change_order",
        "billing.view_webhookevent",
        "billing.view_subscription",
    }
    assert "staff.view_auditevent" in perms(officer)
    assert not any(p.startswith(("accounts.change", "accounts.view_user")) for p in perms(officer))
    assert {"outbox.view_outboxmessage", "staff.view_auditevent", "accounts.change_user"} <= perms(
        admin
    )
    assert "outbox.view_outboxmessage" not in perms(support) | perms(billing) | perms(officer)


def test_set_staff_role_moves_the_user_to_the_roles_group_and_audits_it(db, operator_admin):
    agent = StaffFactory(staff_role="support")

    set_staff_role(agent, "billing", by=operator_admin, reason="moved to finance")

    assert list(agent.groups.values_list("name", flat=True)) == ["Billing"]
    event = AuditEvent.objects.get(action=AuditEvent.Action.UPDATE, target_id=str(agent.pk))
    assert (event.actor_id, event.reason) == (operator_admin.pk, "moved to finance")
    assert "staff_role" in event.fields


def test_removing_the_role_removes_every_permission(db, operator_admin):
    agent = StaffFactory(staff_role="admin", is_superuser=True)
    set_staff_role(agent, "", by=operator_admin)
    agent = User.objects.get(pk=agent.pk)
    assert (agent.is_staff, agent.is_superuser, agent.get_all_permissions()) == (
        False,
        False,
        set(),
    )


def test_a_customers_user_cannot_be_made_staff(customer, operator_admin):
    with pytest.raises(StaffError):
        set_staff_role(customer, "support", by=operator_admin)
    customer.refresh_from_db()
    assert not customer.is_staff


def test_an_unknown_role_is_refused(staff, operator_admin):
    with pytest.raises(StaffError):
        set_staff_role(staff, "janitor", by=operator_admin)
