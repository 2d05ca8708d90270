from django.apps import AppConfig


class ReviewappConfig(AppConfig):
    name = "reviewapp"
    verbose_name = "Counterfactual review"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.contrib import admin
        from django.contrib.auth.signals import user_logged_in, user_login_failed

        from reviewapp import checks  # noqa: F401  (registers the checks)
        from reviewapp.forms.auth import AdminLoginForm
        from reviewapp.services import login_throttle

        def count_failure(sender, credentials, request=None, **kwargs) -> None:
            username = credentials.get("username")
            login_throttle.login_failure_record(
                username=username if isinstance(username, str) else None, request=request
            )

        def forgive_failures(sender, request, user, **kwargs) -> None:
            login_throttle.login_success_record(username=user.get_username())

        user_login_failed.connect(count_failure, weak=False, dispatch_uid="reviewapp-login-failure")
        user_logged_in.connect(forgive_failures, weak=False, dispatch_uid="reviewapp-login-success")
        admin.site.login_form = AdminLoginForm
