"""Operator UI routes (namespace ``ui``)."""

from django.urls import path

from arm import views

app_name = "ui"

urlpatterns = [
    path("", views.home, name="directory"),
]
