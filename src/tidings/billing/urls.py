from django.urls import path

from tidings.billing import views

app_name = "billing"
urlpatterns = [
    path("pricing/", views.pricing, name="pricing"),
    path("account/billing/", views.billing, name="billing"),
    path("account/billing/invoices/<int:pk>/pdf/", views.invoice_pdf, name="invoice_pdf"),
    path("account/billing/order/<int:offer_id>/", views.order, name="order"),
    path("account/billing/recharge/", views.recharge_settings, name="recharge"),
    path("account/billing/orders/<uuid:uuid>/", views.returned, name="returned"),
    path("account/billing/orders/<uuid:uuid>/pay/", views.pay, name="pay"),
    path("pay/test/<str:session>/", views.test_gateway, name="test_gateway"),
    path("billing/webhooks/<str:gateway>/", views.webhook, name="webhook"),
]
