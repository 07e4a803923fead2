from django.urls import path

from earworm.web import views

app_name = "web"

urlpatterns = [
    path("", views.HomeView.as_view(), name="home"),
    path("plays/", views.PlayListView.as_view(), name="play-list"),
    path("genres/", views.GenreListView.as_view(), name="genre-list"),
    path("artists/<int:pk>/", views.ArtistDetailView.as_view(), name="artist-detail"),
    path("albums/<int:pk>/", views.AlbumDetailView.as_view(), name="album-detail"),
    path("tracks/<int:pk>/", views.TrackDetailView.as_view(), name="track-detail"),
    path("year/", views.YearInReviewView.as_view(), name="year-review-latest"),
    path("year/<int:year>/", views.YearInReviewView.as_view(), name="year-review"),
    path("settings/", views.SettingsView.as_view(), name="settings"),
    path("settings/time-zone/", views.TimeZoneUpdateView.as_view(), name="time-zone-update"),
    path("settings/tokens/", views.ApiTokenCreateView.as_view(), name="api-token-create"),
    path("settings/tokens/<int:pk>/revoke/", views.ApiTokenRevokeView.as_view(), name="api-token-revoke"),
    path("settings/delete/", views.AccountDeleteView.as_view(), name="account-delete"),
]
