from django.urls import path

from monitoring import views

app_name = "monitoring"

urlpatterns = [
    path("staff/<slug:code>/audit/", views.audit_log, name="audit_log"),
    path("staff/<slug:code>/audit.csv", views.audit_csv, name="audit_csv"),
    path("hq/", views.national_dashboard, name="national"),
    path("staff/<slug:code>/dashboard/", views.live_dashboard, name="dashboard"),
    path(
        "staff/<slug:code>/alerts/<int:alert_id>/acknowledge",
        views.alert_acknowledge,
        name="alert_acknowledge",
    ),
    path(
        "staff/<slug:code>/alerts/<int:alert_id>/snapshot.jpg",
        views.alert_snapshot,
        name="alert_snapshot",
    ),
    path("staff/<slug:code>/test-calls/", views.test_calls, name="test_calls"),
    path("staff/<slug:code>/calls/<uuid:call_id>/", views.call_detail, name="call_detail"),
    path(
        "staff/<slug:code>/calls/<uuid:call_id>/alerts/acknowledge",
        views.call_alerts_acknowledge,
        name="call_alerts_acknowledge",
    ),
    path(
        "staff/<slug:code>/calls/<uuid:call_id>/<slug:action>/",
        views.call_control,
        name="call_control",
    ),
]
