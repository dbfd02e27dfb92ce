from django.urls import path

from establishments import views

urlpatterns = [
    path("", views.home, name="home"),
]
