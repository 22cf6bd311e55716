from django.urls import path

from tickets.email import views

urlpatterns = [
    path("inbound/email/", views.inbound_email, name="inbound-email"),
    path("attachments/<int:pk>/", views.attachment_for_staff, name="attachment"),
    path("email/rate/<str:token>/", views.email_rate, name="email-rate"),
    path("email/unsubscribe/<str:token>/", views.email_unsubscribe, name="email-unsubscribe"),
]
