from django.urls import path

from tidings.automations import views

app_name = "automations"
urlpatterns = [
    path("automations/", views.automation_list, name="list"),
    path("automations/new/", views.automation_new, name="new"),
    path("automations/<uuid:uuid>/", views.automation_detail, name="detail"),
    path("automations/<uuid:uuid>/action/", views.automation_action, name="action"),
    path("automations/<uuid:uuid>/delete/", views.automation_delete, name="delete"),
    path("ab-tests/", views.split_test_list, name="split_tests"),
    path("ab-tests/<uuid:uuid>/", views.split_test_detail, name="split_test"),
    path("webhooks/", views.webhook_list, name="webhooks"),
    path("webhooks/<uuid:uuid>/", views.webhook_detail, name="webhook"),
]
