import factory
from django.utils import timezone

from tidings.accounts.models import Account, User

PASSWORD = "correct horse battery staple"


class AccountFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Account

    name = factory.Sequence(lambda n: f"Organisation {n}")


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"person{n}@example.org")
    name = factory.Sequence(lambda n: f"Person {n}")
    account = factory.SubFactory(AccountFactory)
    email_confirmed_at = factory.LazyFunction(timezone.now)
    password = factory.django.Password(PASSWORD)


class StaffFactory(UserFactory):
    account = None
    is_staff = True
    staff_role = User.StaffRole.SUPPORT
