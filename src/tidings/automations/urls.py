from django.urls import path

from tidings.automations import views

app_name = "automations"
urlpatterns = [
    path("automations/", views.automation_list, name="list"),
    path("automations/new/", views.automation_new, name="new"),
    path("automations/<uuid:uuid>/", views.automation_detail, name="detail"),
    path("automations/<uuid:uuid>/action/", views.automation_action, name="action"),
    path("webhooks/", views.webhook_list, name="webhooks"),
    path("webhooks/<uuid:uuid>/", views.webhook_detail, name="webhook"),
]
