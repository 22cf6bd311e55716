from django.urls import path

from tickets import views

app_name = "chat"

urlpatterns = [
    path("", views.chat_start, name="start"),
    path("c/<str:token>/", views.chat_conversation, name="conversation"),
    path("c/<str:token>/send/", views.chat_send, name="send"),
    path("c/<str:token>/messages/", views.chat_messages, name="messages"),
    path("c/<str:token>/rate/", views.chat_rate, name="rate"),
    path("c/<str:token>/email/", views.chat_email, name="email"),
]
