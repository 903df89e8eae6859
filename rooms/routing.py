from django.urls import path

from rooms.consumers import SignalingConsumer

websocket_urlpatterns = [
    path("ws/signaling/", SignalingConsumer.as_asgi()),
]
