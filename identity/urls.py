from django.urls import path

from identity import group_views, views

urlpatterns = [
    path("me/", views.me, name="me"),
    path("me/details/", views.me_profile, name="me_profile"),
    path("me/consent/", views.me_consent, name="me_consent"),
    path("me/identity/", views.me_identity, name="me_identity"),
    path("me/identity/<int:check_id>/<str:kind>/", views.me_check_image, name="me_check_image"),
    path("me/dependants/add/", views.me_dependant_add, name="me_dependant_add"),
    path(
        "me/dependants/<int:dependant_id>/photo/",
        views.me_dependant_photo,
        name="me_dependant_photo",
    ),
    path(
        "me/dependants/<int:dependant_id>/photo.jpg",
        views.me_dependant_image,
        name="me_dependant_image",
    ),
    path("me/connect/", views.me_connect, name="me_connect"),
    # The join page's camera check sends frames here (no profile id: always one's own).
    path("me/precall-frames/", views.me_precall_frames, name="me_precall_frames"),
    path("me/group/", group_views.me_group, name="me_group"),
    path("me/delete/", views.me_delete, name="me_delete"),
    path("staff/", views.staff_home, name="staff_home"),
    path("staff/<slug:code>/prisoners/", views.staff_prisoners, name="identity_staff_prisoners"),
    path(
        "staff/<slug:code>/prisoners/<str:prison_number>/photo/",
        views.staff_prisoner_photo,
        name="identity_staff_prisoner_photo",
    ),
    path(
        "staff/<slug:code>/prisoners/<str:prison_number>/photo/remove/",
        views.staff_prisoner_photo_remove,
        name="identity_staff_prisoner_photo_remove",
    ),
    path("staff/<slug:code>/identity/", views.staff_queue, name="identity_staff_queue"),
    path(
        "staff/<slug:code>/identity/checks/<int:check_id>/",
        views.staff_check,
        name="identity_staff_check",
    ),
    path(
        "staff/<slug:code>/identity/checks/<int:check_id>/<str:kind>.jpg",
        views.staff_check_image,
        name="identity_staff_check_image",
    ),
    path(
        "staff/<slug:code>/identity/dependants/<int:dependant_id>/",
        views.staff_dependant,
        name="identity_staff_dependant",
    ),
    path(
        "staff/<slug:code>/identity/dependants/<int:dependant_id>/photo.jpg",
        views.staff_dependant_photo,
        name="identity_staff_dependant_photo",
    ),
    path(
        "staff/<slug:code>/identity/connections/<int:connection_id>/",
        views.staff_connection,
        name="identity_staff_connection",
    ),
]
