from django.urls import path

from tidings.public import views

app_name = "public"
urlpatterns = [
    path("", views.home, name="home"),
    path("privacy/", views.privacy, name="privacy"),
    path("privacy/v/<int:number>/", views.policy_version, name="policy_version"),
    path("contact/", views.contact, name="contact"),
]
