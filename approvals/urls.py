from django.urls import path

from approvals import views

app_name = "approvals"

urlpatterns = [
    path("", views.ApprovalListView.as_view(), name="list"),
    path("<int:pk>/", views.ApprovalDetailView.as_view(), name="detail"),
    path("<int:pk>/progress/", views.ReleaseProgressView.as_view(), name="progress"),
    path("<int:pk>/cancel/", views.RequestActionView.as_view(action="cancel"), name="cancel"),
    path("<int:pk>/retry/", views.RequestActionView.as_view(action="retry"), name="retry"),
    path("<int:pk>/withdraw/", views.RequestActionView.as_view(action="withdraw"),
         name="withdraw"),
]
