from django.urls import path

from earworm.accounts import views

app_name = "accounts"

urlpatterns = [
    path("login/", views.SpotifyLoginView.as_view(), name="login"),
    path("callback/", views.SpotifyCallbackView.as_view(), name="callback"),
    path("logout/", views.LogoutView.as_view(), name="logout"),
]
