from django.urls import path

from api import views

urlpatterns = [
    path("api/auth/login", views.auth_login, name="api-login"),
    path("api/auth/logout", views.auth_logout, name="api-logout"),
    path("api/config", views.session, name="api-config"),
    path("api/rooms", views.rooms_create, name="api-rooms"),
    path("api/rooms/<str:number>", views.room_detail, name="api-room-detail"),
]
