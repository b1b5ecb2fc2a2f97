from django.urls import path

from tidings.audience import public_views, request_views, views

app_name = "audience"
urlpatterns = [
    path("lists/", views.lists, name="lists"),
    path("lists/new/", views.list_edit, name="list_new"),
    path("lists/<uuid:list_uuid>/", views.list_edit, name="list"),
    path("lists/<uuid:list_uuid>/delete/", views.list_delete, name="list_delete"),
    path("contacts/", views.contacts, name="contacts"),
    path("contacts/new/", views.contact_new, name="contact_new"),
    path("contacts/bulk/", views.contacts_bulk, name="contacts_bulk"),
    path("contacts/<uuid:contact_uuid>/", views.contact_detail, name="contact"),
    path("contacts/<uuid:contact_uuid>/lists/", views.contact_lists, name="contact_lists"),
    path(
        "contacts/<uuid:contact_uuid>/blocklist/",
        views.contact_blocklist,
        name="contact_blocklist",
    ),
    path(
        "contacts/<uuid:contact_uuid>/restriction/",
        views.contact_restriction,
        name="contact_restriction",
    ),
    path("contacts/<uuid:contact_uuid>/delete/", views.contact_delete, name="contact_delete"),
    path("segments/", views.segment_list, name="segments"),
    path("segments/new/", views.segment_edit, name="segment_new"),
    path("segments/count/", views.segment_count, name="segment_count"),
    path("segments/<uuid:segment_uuid>/", views.segment_edit, name="segment"),
    path("segments/<uuid:segment_uuid>/delete/", views.segment_delete, name="segment_delete"),
    path("forms/", views.form_list, name="forms"),
    path("forms/new/", views.form_edit, name="form_new"),
    path("forms/<uuid:form_uuid>/", views.form_edit, name="form"),
    path("forms/<uuid:form_uuid>/delete/", views.form_delete, name="form_delete"),
    path("audience/settings/", views.audience_settings, name="settings"),
    path("requests/", request_views.inbox, name="requests"),
    path("requests/<uuid:request_uuid>/", request_views.detail, name="request"),
    # Public pages for the customer's contacts (no login).
    path("subscribe/<uuid:form_uuid>/", public_views.subscribe, name="subscribe"),
    path("subscribe/confirm/<str:token>/", public_views.confirm, name="confirm"),
    path("p/<str:token>/", public_views.preferences, name="preferences"),
    path("p/<str:token>/data/", public_views.my_data, name="my_data"),
    path("p/<str:token>/data/<str:fmt>/", public_views.my_data_download, name="my_data_download"),
    path("u/<str:token>/", public_views.unsubscribe, name="unsubscribe"),
]
