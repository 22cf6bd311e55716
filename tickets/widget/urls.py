from django.urls import path

from tickets.widget import views

app_name = "widget"

urlpatterns = [
    path("<str:site_key>/", views.widget_start, name="start"),
    path("<str:site_key>/c/<str:token>/", views.widget_conversation, name="conversation"),
    path("<str:site_key>/c/<str:token>/<path:action>", views.widget_action, name="action"),
]
