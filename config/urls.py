from django.contrib import admin
from django.urls import include, path

from earworm.api.api import api
from earworm.core.views import healthz

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", api.urls),
    path("api/", include("earworm.accounts.urls")),
    path("healthz", healthz, name="healthz"),
    path("import/", include("earworm.history.urls")),
    path("", include("earworm.web.urls")),
]
