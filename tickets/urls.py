from django.urls import path

from tickets import views
from tickets.email import views as email_views

app_name = "chat"

urlpatterns = [
    path("", views.chat_start, name="start"),
    path("c/<str:token>/", views.chat_conversation, name="conversation"),
    path("c/<str:token>/send/", views.chat_send, name="send"),
    path("c/<str:token>/messages/", views.chat_messages, name="messages"),
    path("c/<str:token>/rate/", views.chat_rate, name="rate"),
    path("c/<str:token>/email/", views.chat_email, name="email"),
    path("c/<str:token>/answers/<int:seq>/feedback/", views.chat_feedback, name="feedback"),
    path("c/<str:token>/person/", views.chat_person, name="person"),
    path("c/<str:token>/solved/", views.chat_solved, name="solved"),
    path("c/<str:token>/language/", views.chat_language, name="language"),
    path("c/<str:token>/files/<int:pk>/", email_views.attachment_for_customer, name="attachment"),
]
