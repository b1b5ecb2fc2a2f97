from django.urls import path

from tidings.campaigns import gallery_views, media_views, views, visual_views

app_name = "campaigns"
urlpatterns = [
    path("campaigns/", views.campaign_list, name="list"),
    path("campaigns/new/", views.campaign_new, name="new"),
    path("campaigns/<uuid:uuid>/", views.campaign_edit, name="edit"),
    path("campaigns/<uuid:uuid>/preview/", views.campaign_preview, name="preview"),
    path("campaigns/<uuid:uuid>/visual/", visual_views.campaign_visual, name="visual"),
    path("campaigns/<uuid:uuid>/preview.html", views.campaign_preview_html, name="preview_html"),
    path("campaigns/<uuid:uuid>/test/", views.campaign_test, name="test"),
    path("campaigns/<uuid:uuid>/duplicate/", views.campaign_duplicate, name="duplicate"),
    path("campaigns/<uuid:uuid>/delete/", views.campaign_delete, name="delete"),
    path(
        "campaigns/<uuid:uuid>/save-template/",
        gallery_views.save_as_template,
        name="save_template",
    ),
    path("templates/", gallery_views.gallery_page, name="gallery"),
    path(
        "templates/<slug:slug>/preview.html",
        gallery_views.gallery_preview_html,
        name="gallery_preview_html",
    ),
    path(
        "templates/saved/<int:pk>/preview.html",
        gallery_views.saved_preview_html,
        name="saved_preview_html",
    ),
    path("templates/saved/<int:pk>/delete/", gallery_views.saved_delete, name="saved_delete"),
    path("images/", media_views.media_library, name="media"),
    path("images/upload/", media_views.media_upload, name="media_upload"),
    path("images/<int:pk>/delete/", media_views.media_delete, name="media_delete"),
    # The public address of an image: its key is 256 random bits (mail clients log in nowhere).
    path("i/<str:key>/<str:name>", media_views.media_file, name="media_file"),
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
