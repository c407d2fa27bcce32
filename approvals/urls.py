from django.urls import path

from approvals import views

app_name = "approvals"

urlpatterns = [
    path("", views.ApprovalListView.as_view(), name="list"),
    path("<int:pk>/", views.ApprovalDetailView.as_view(), name="detail"),
]
