from django.urls import path

from knowledge import views

app_name = "help"

urlpatterns = [
    path("", views.help_index, name="index"),
    path("articles/<slug:slug>/", views.help_article, name="article"),
    path("articles/<slug:slug>/vote/", views.help_vote, name="vote"),
    path("suggest/", views.help_suggest, name="suggest"),
    path("go/<str:token>/", views.help_click, name="click"),
]
