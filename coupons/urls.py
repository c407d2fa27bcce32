from django.urls import path

from coupons import issue_views, views

app_name = "coupons"

urlpatterns = [
    path("", views.CouponHomeView.as_view(), name="home"),
    path("templates/", views.TemplateListView.as_view(), name="template_list"),
    path("templates/new/", views.TemplateCreateView.as_view(), name="template_create"),
    path("templates/<int:pk>/", views.TemplateDetailView.as_view(), name="template_detail"),
    path("templates/<int:pk>/disable/", views.TemplateDisableView.as_view(),
         name="template_disable"),
    path("templates/<int:pk>/issue/", issue_views.IssueCouponView.as_view(), name="issue"),
    path("templates/<int:pk>/issue/selection/", issue_views.IssueSelectionView.as_view(),
         name="issue_selection"),
]
