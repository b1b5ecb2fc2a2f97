from django.urls import include, path

from tidings.api import api
from tidings.desk.urls import staff_urlpatterns as desk_staff
from tidings.sending.urls import staff_urlpatterns as sending_staff
from tidings.staff.admin_site import site as staff_site

urlpatterns = [
    # First, the apps whose public links a big campaign's readers hit at once: sending's
    # (open pixel, click, one-click unsubscribe, first in its list), then audience's
    # (preference page, hosted form). Django tries the patterns in order.
    path("", include("tidings.sending.urls")),
    path("", include("tidings.audience.urls")),
    path("", include("tidings.public.urls")),
    path("", include("tidings.accounts.urls")),
    path("", include("tidings.transfer.urls")),
    path("", include("tidings.campaigns.urls")),
    path("", include("tidings.automations.urls")),
    path("", include("tidings.consent.urls")),
    path("", include("tidings.billing.urls")),
    path("", include("tidings.desk.urls")),
    path("api/v1/", api.urls),
    path("", include("tidings.privacy.urls")),
    path("", include("tidings.breaches.urls")),
    *sending_staff,
    *desk_staff,
    path("staff/admin/", staff_site.urls),
]
