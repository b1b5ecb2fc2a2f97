from django.urls import path

from tidings.consent import views
from tidings.staff.admin_site import site

app_name = "consent"
urlpatterns = [
    path("cookies/", views.cookie_settings, name="cookies"),
    path("subprocessors/", views.subprocessors, name="subprocessors"),
    path(".well-known/gpc.json", views.gpc_json, name="gpc"),
    path("staff/page-views/", site.admin_view(views.page_views), name="page_views"),
]
