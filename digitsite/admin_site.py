"""The project's admin site: Django's, with throttled logins.

Django's documented way to change the default admin site is an AdminConfig
whose `default_site` names the site class; INSTALLED_APPS lists this config
instead of "django.contrib.admin". Every app's admin.py still registers with
`django.contrib.admin.site`, which is then this site.
"""

import functools

from django.contrib import admin
from django.contrib.admin.apps import AdminConfig


class ThrottledAdminSite(admin.AdminSite):
    """The admin site whose login refuses to check passwords while locked
    (digitsite/login_throttle.py)."""

    @functools.cached_property
    def login_form(self):
        # Imported here: the admin's forms import the auth models, which are
        # not ready while INSTALLED_APPS loads this module.
        from django.contrib.admin.forms import AdminAuthenticationForm

        from digitsite import login_throttle

        return login_throttle.throttled_form(AdminAuthenticationForm)


class SiteAdminConfig(AdminConfig):
    default_site = "digitsite.admin_site.ThrottledAdminSite"

    def ready(self):
        super().ready()
        from digitsite import login_throttle  # noqa: F401  (connects its signal receivers)
