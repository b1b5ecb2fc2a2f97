from django.urls import path

from tidings.sending import report_views, staff_views, views
from tidings.staff.admin_site import site

app_name = "sending"
urlpatterns = [
    # The links a big campaign's readers hit at once come first: Django tries the
    # patterns in order (bench/README.md, web).
    path("t/o/<str:token>/", views.open_pixel, name="open"),
    path("t/c/<str:token>/", views.click, name="click"),
    path("oneclick/<str:token>/", views.unsubscribe, name="unsubscribe"),
    path("campaigns/<uuid:uuid>/send/", views.send_page, name="send"),
    path("campaigns/<uuid:uuid>/progress.json", views.progress_json, name="progress"),
    path("campaigns/<uuid:uuid>/send/spam.json", views.spam_json, name="spam"),
    path("dashboard/", report_views.dashboard_page, name="dashboard"),
    path("campaigns/<uuid:uuid>/report/", report_views.report_page, name="report"),
    path(
        "campaigns/<uuid:uuid>/report.<str:fmt>",
        report_views.report_export,
        name="report_export",
    ),
    path("sending/", views.settings_page, name="settings"),
    path("sending/relays/<int:pk>/remove/", views.remove_relay, name="remove_relay"),
    path("sending/domains/<int:pk>/remove/", views.remove_domain, name="remove_domain"),
    path("sending/domains/<int:pk>/check/", views.check_domain, name="check_domain"),
    path("archive/<int:account_id>/", views.archive, name="archive"),
    path("archive/<int:account_id>/<uuid:uuid>/", views.archived_campaign, name="archived"),
    path("webhooks/postmark/", views.postmark_webhook, name="postmark_webhook"),
    path("webhooks/mailgun/", views.mailgun_webhook, name="mailgun_webhook"),
]
# The staff console's page, outside this app's namespace like the console's others.
staff_urlpatterns = [
    path(
        "staff/product-updates/",
        site.admin_view(staff_views.product_updates_page),
        name="staff_product_updates",
    ),
]
