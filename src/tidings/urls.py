from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("", include("tidings.public.urls")),
    path("", include("tidings.accounts.urls")),
    path("staff/admin/", admin.site.urls),
]
