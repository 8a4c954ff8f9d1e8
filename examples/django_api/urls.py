"""The Organizer API's URLs."""

from __future__ import annotations

from django.urls import path

from . import views

urlpatterns = [
    path("api/public", views.Public.as_view()),
    path("api/private", views.Private.as_view()),
    path("api/appointments", views.Appointments.as_view()),
    path("api/appointments/<int:appointment_id>", views.Appointment.as_view()),
    path("api/security", views.Security.as_view()),
    path("api/contacts", views.Contacts.as_view()),
    path("api/tasks", views.Tasks.as_view()),
]
