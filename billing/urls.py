from django.urls import path, register_converter

from billing import account_views as views


class DayConverter:
    regex = r"\d{4}-\d{2}-\d{2}"

    def to_python(self, value):
        return value

    def to_url(self, value):
        return str(value)


class MonthConverter:
    regex = r"\d{4}-\d{2}"

    def to_python(self, value):
        return value

    def to_url(self, value):
        return str(value)


register_converter(DayConverter, "day")
register_converter(MonthConverter, "month")

app_name = "billing"

urlpatterns = [
    path("coupons/", views.SubAccountCouponsView.as_view(), name="coupons"),
    path("bills/", views.BillListView.as_view(), name="bills"),
    path("bills/daily/<day:day>/", views.DailyBillView.as_view(), name="daily_bill"),
    path("bills/monthly/<month:month>/", views.MonthlyBillView.as_view(), name="monthly_bill"),
]
