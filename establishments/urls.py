from django.urls import path

from establishments import pages, views

urlpatterns = [
    path("", views.home, name="home"),
    path("help/", pages.help_page, name="help"),
    path("privacy/", pages.privacy, name="privacy"),
    path("accessibility/", pages.accessibility, name="accessibility"),
    path("cookies/", pages.cookies, name="cookies"),
    path("feedback/", pages.feedback, name="feedback"),
    path("feedback/sent/", pages.feedback_sent, name="feedback_sent"),
]
