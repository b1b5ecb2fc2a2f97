from django.urls import path

from tidings.accounts import api_key_views, views

app_name = "accounts"
urlpatterns = [
    path("register/", views.register, name="register"),
    path("confirm/<str:token>/", views.confirm, name="confirm"),
    path("confirm-email/<str:token>/", views.confirm_new_email, name="confirm_new_email"),
    path("confirm-again/", views.resend_confirmation, name="resend_confirmation"),
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", views.logout_view, name="logout"),
    path("password-reset/", views.password_reset, name="password_reset"),
    path("password-reset/sent/", views.password_reset_done, name="password_reset_done"),
    path(
        "password-reset/<uidb64>/<token>/",
        views.password_reset_confirm,
        name="password_reset_confirm",
    ),
    path("password-reset/done/", views.password_reset_complete, name="password_reset_complete"),
    path("account/", views.my_account, name="my_account"),
    path("language/", views.set_language, name="set_language"),
    path("account/locale/", views.change_locale, name="change_locale"),
    path("account/edit/", views.edit_profile, name="edit_profile"),
    path("account/processing/", views.processing, name="processing"),
    path("account/restriction/", views.restriction, name="restriction"),
    path("account/password/", views.change_password, name="change_password"),
    path("account/close/", views.close_account, name="close"),
    path("account/closed/", views.closed, name="closed"),
    path("account/reopen/", views.reopen, name="reopen"),
    path("account/export/", views.request_export, name="request_export"),
    path("account/export/<int:pk>/", views.download_export, name="download_export"),
    path("account/api-keys/", api_key_views.api_keys, name="api_keys"),
    path(
        "account/api-keys/<int:key_id>/revoke/",
        api_key_views.revoke_api_key,
        name="revoke_api_key",
    ),
]
