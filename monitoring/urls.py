from django.urls import path

from monitoring import views

app_name = "monitoring"

urlpatterns = [
    path("staff/<slug:code>/audit/", views.audit_log, name="audit_log"),
    path("staff/<slug:code>/audit.csv", views.audit_csv, name="audit_csv"),
    path("hq/", views.national_dashboard, name="national"),
]
