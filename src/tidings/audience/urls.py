from django.urls import path

from tidings.audience.views import contacts, forms, lists, public, requests, segments
from tidings.audience.views import settings as audience_settings

app_name = "audience"
urlpatterns = [
    # Public pages for the customer's contacts (no login), first: a big campaign's
    # readers open them at once, and Django tries the patterns in order.
    path("subscribe/<uuid:form_uuid>/", public.subscribe, name="subscribe"),
    path("subscribe/confirm/<str:token>/", public.confirm, name="confirm"),
    path("p/<str:token>/", public.preferences, name="preferences"),
    path("p/<str:token>/data/", public.my_data, name="my_data"),
    path("p/<str:token>/data/<str:fmt>/", public.my_data_download, name="my_data_download"),
    path("u/<str:token>/", public.unsubscribe, name="unsubscribe"),
    path("lists/", lists.lists, name="lists"),
    path("lists/new/", lists.list_edit, name="list_new"),
    path("lists/<uuid:list_uuid>/", lists.list_edit, name="list"),
    path("lists/<uuid:list_uuid>/delete/", lists.list_delete, name="list_delete"),
    path("contacts/", contacts.contacts, name="contacts"),
    path("contacts/new/", contacts.contact_new, name="contact_new"),
    path("contacts/bulk/", contacts.contacts_bulk, name="contacts_bulk"),
    path("contacts/<uuid:contact_uuid>/", contacts.contact_detail, name="contact"),
    path("contacts/<uuid:contact_uuid>/lists/", contacts.contact_lists, name="contact_lists"),
    path(
        "contacts/<uuid:contact_uuid>/blocklist/",
        contacts.contact_blocklist,
        name="contact_blocklist",
    ),
    path(
        "contacts/<uuid:contact_uuid>/restriction/",
        contacts.contact_restriction,
        name="contact_restriction",
    ),
    path("contacts/<uuid:contact_uuid>/delete/", contacts.contact_delete, name="contact_delete"),
    path("segments/", segments.segment_list, name="segments"),
    path("segments/new/", segments.segment_edit, name="segment_new"),
    path("segments/count/", segments.segment_count, name="segment_count"),
    path("segments/<uuid:segment_uuid>/", segments.segment_edit, name="segment"),
    path("segments/<uuid:segment_uuid>/delete/", segments.segment_delete, name="segment_delete"),
    path("forms/", forms.form_list, name="forms"),
    path("forms/new/", forms.form_edit, name="form_new"),
    path("forms/<uuid:form_uuid>/", forms.form_edit, name="form"),
    path("forms/<uuid:form_uuid>/delete/", forms.form_delete, name="form_delete"),
    path("audience/settings/", audience_settings.audience_settings, name="settings"),
    path("requests/", requests.inbox, name="requests"),
    path("requests/<uuid:request_uuid>/", requests.detail, name="request"),
]
