from django.urls import path

from accounts import views

urlpatterns = [
    path("accounts/login/", views.LoginPage.as_view(), name="login"),
    path("accounts/logout/", views.LogoutPage.as_view(), name="logout"),
    path("accounts/signup/", views.SignupView.as_view(), name="signup"),
]
