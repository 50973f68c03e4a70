"""ARM's Django admin site: Django's own, except that its password change page checks the current
password under the sign-in throttle (``tenancy.login_throttle.check_current_password``), as the sign-in
page does: without it, a signed-in session could guess the account's password without limit there."""

from django.contrib import admin
from django.urls import reverse


class ArmAdminSite(admin.AdminSite):
    def password_change(self, request, extra_context=None):
        """Django's ``AdminSite.password_change`` with the throttled form."""
        from tenancy.login_throttle import ThrottledPasswordChangeView

        request.current_app = self.name
        return ThrottledPasswordChangeView.as_view(
            success_url=reverse("admin:password_change_done", current_app=self.name),
            extra_context={**self.each_context(request), **(extra_context or {})},
            **({"template_name": self.password_change_template} if self.password_change_template else {}),
        )(request)
