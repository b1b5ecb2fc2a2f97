from django.apps import AppConfig
from django.db.models.signals import post_migrate, post_save


class StaffConfig(AppConfig):
    name = "tidings.staff"
    label = "staff"
    verbose_name = "Staff and audit"

    def ready(self) -> None:
        from tidings.staff import privacy  # noqa: F401
        from tidings.staff.roles import on_post_migrate, on_user_saved

        post_migrate.connect(on_post_migrate, sender=self, dispatch_uid="staff-role-groups")
        post_save.connect(on_user_saved, sender="accounts.User", dispatch_uid="staff-role-sync")
