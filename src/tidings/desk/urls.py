from django.urls import path

from tidings.desk import staff_views, views
from tidings.staff.admin_site import site

app_name = "desk"
urlpatterns = [
    path("support/", views.conversations, name="conversations"),
    path("support/new/", views.new_conversation, name="new"),
    path("support/<int:pk>/", views.conversation, name="conversation"),
    path("support/files/<int:pk>/", views.attachment, name="attachment"),
    path("support/rate/<str:token>/", views.rate, name="rate"),
    path("support/chat/", views.customer_chat, name="customer_chat"),
    path("chat/", views.chat_start, name="chat"),
    path("chat/<str:token>/", views.chat_room, name="chat_room"),
    path("webhooks/<slug:provider>/inbound/", views.provider_inbound, name="provider_inbound"),
]

# The staff's desk, in the console (two factors, roles: site.admin_view).
staff_urlpatterns = [
    path("staff/desk/", site.admin_view(staff_views.queue_page), name="staff_desk"),
    path(
        "staff/desk/<int:pk>/",
        site.admin_view(staff_views.conversation_page),
        name="staff_desk_conversation",
    ),
]
