"""The desk's WebSocket routes (tidings.asgi serves them; desk.consumers says what each does)."""

from django.urls import path, re_path

from tidings.desk import consumers

websocket_urlpatterns = [
    path("ws/desk/chat/<str:token>/", consumers.VisitorChat.as_asgi()),
    path("ws/desk/agent/<int:pk>/", consumers.AgentChat.as_asgi()),
    path("ws/desk/queue/", consumers.AgentQueue.as_asgi()),
    re_path(r"", consumers.Refused.as_asgi()),
]
