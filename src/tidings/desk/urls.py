from django.urls import path

from tidings.desk import views

app_name = "desk"
urlpatterns = [
    path("support/", views.conversations, name="conversations"),
    path("support/new/", views.new_conversation, name="new"),
    path("support/<int:pk>/", views.conversation, name="conversation"),
    path("support/files/<int:pk>/", views.attachment, name="attachment"),
]
