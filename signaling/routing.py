from django.urls import path

from signaling.consumer import SignalingConsumer

websocket_urlpatterns = [
    path("ws/signaling/", SignalingConsumer.as_asgi()),
]
