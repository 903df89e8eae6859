from django.urls import path

from rooms import views

urlpatterns = [
    path("", views.lobby, name="lobby"),
    path("rooms/<str:number>/", views.room_page, name="room"),
    path("api/rooms", views.api_rooms, name="api-rooms"),
    path("api/rooms/<str:number>", views.api_room_detail, name="api-room-detail"),
]
