from django.urls import path

from tidings.privacy import office_views
from tidings.staff.admin_site import site

urlpatterns = [
    path("staff/privacy-office/", site.admin_view(office_views.dashboard), name="privacy_office"),
    path(
        "staff/privacy-office/requests/<int:pk>/",
        site.admin_view(office_views.close_request),
        name="privacy_office_request",
    ),
    path(
        "staff/privacy-office/contact-requests/<uuid:request_uuid>/",
        site.admin_view(office_views.contact_request),
        name="privacy_office_contact_request",
    ),
    path(
        "staff/privacy-office/records.<str:fmt>",
        site.admin_view(office_views.records_download),
        name="privacy_office_records",
    ),
]
