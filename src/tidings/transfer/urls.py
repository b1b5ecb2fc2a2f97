from django.urls import path

from tidings.transfer import views

app_name = "transfer"
urlpatterns = [
    path("audience/import/", views.imports, name="imports"),
    path("audience/import/upload/", views.upload, name="upload"),
    path("audience/import/<int:pk>/", views.import_detail, name="import_detail"),
    path("audience/import/<int:pk>/map/", views.import_map, name="import_map"),
    path("audience/import/<int:pk>/basis/", views.import_basis, name="import_basis"),
    path("audience/import/<int:pk>/status.json", views.import_status, name="import_status"),
    path("audience/import/<int:pk>/rejected.csv", views.import_report, name="import_report"),
    path("audience/import/<int:pk>/discard/", views.import_discard, name="import_discard"),
    path("audience/export/", views.exports, name="exports"),
    path("audience/export/<int:pk>/download/", views.export_download, name="export_download"),
]
