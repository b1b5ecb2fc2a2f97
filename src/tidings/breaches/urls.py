from django.urls import path

from tidings.breaches import office_views, views
from tidings.staff.admin_site import site

urlpatterns = [
    path("account/breach-notices/<int:pk>/", views.notice, name="breach_notice"),
    path(
        "account/breach-notices/<int:pk>/read/",
        views.acknowledge,
        name="breach_notice_read",
    ),
    path(
        "staff/privacy-office/breaches/",
        site.admin_view(office_views.register),
        name="breach_register",
    ),
    path(
        "staff/privacy-office/breaches/<int:pk>/",
        site.admin_view(office_views.incident),
        name="breach_incident",
    ),
    path(
        "staff/privacy-office/breaches/<int:pk>/report.<str:fmt>",
        site.admin_view(office_views.report_download),
        name="breach_report",
    ),
]
