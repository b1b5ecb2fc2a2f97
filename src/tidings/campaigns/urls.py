from django.urls import path

from tidings.campaigns import views

app_name = "campaigns"
urlpatterns = [
    path("campaigns/", views.campaign_list, name="list"),
    path("campaigns/new/", views.campaign_new, name="new"),
    path("campaigns/<uuid:uuid>/", views.campaign_edit, name="edit"),
    path("campaigns/<uuid:uuid>/preview/", views.campaign_preview, name="preview"),
    path("campaigns/<uuid:uuid>/preview.html", views.campaign_preview_html, name="preview_html"),
    path("campaigns/<uuid:uuid>/test/", views.campaign_test, name="test"),
    path("campaigns/<uuid:uuid>/duplicate/", views.campaign_duplicate, name="duplicate"),
    path("campaigns/<uuid:uuid>/delete/", views.campaign_delete, name="delete"),
    path("layouts/", views.layout_list, name="layouts"),
    path("layouts/new/", views.layout_new, name="layout_new"),
    path("layouts/default/", views.layout_default, name="layout_default"),
    path("layouts/default/copy/", views.layout_copy_default, name="layout_copy_default"),
    path(
        "layouts/default/preview.html",
        views.layout_default_preview_html,
        name="layout_default_preview_html",
    ),
    path("layouts/<int:pk>/", views.layout_edit, name="layout_edit"),
    path("layouts/<int:pk>/preview.html", views.layout_preview_html, name="layout_preview_html"),
    path("layouts/<int:pk>/delete/", views.layout_delete, name="layout_delete"),
]
