from django.urls import path

from earworm.history import views

app_name = "history"

urlpatterns = [
    path("", views.ImportJobListView.as_view(), name="import"),
]
