"""Operator UI routes (namespace ``ui``). Every view is tenant-scoped and role-checked (tenancy.pages.tenant_page)."""

from django.urls import path
from django.views.generic import RedirectView

from approvals import views as approval_views
from audit import views as audit_views
from ledger import views as ledger_views
from notifications import views as notification_views
from policies import views as policy_views
from registry import views as registry_views
from schedules import views as schedule_views
from tenancy import pages, people
from tenancy import views as account_views

app_name = "ui"

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="ui:directory", query_string=True), name="home"),
    path("tenant/switch/", pages.tenant_switch, name="tenant_switch"),
    path("search/", registry_views.search, name="search"),
    # Tenancy's API keys page with the instance a key is bound to (the binding is registry's).
    path("settings/api-keys/", registry_views.api_keys, name="api_keys"),
    path("settings/api-keys/<uuid:pk>/revoke/", account_views.api_key_revoke_view, name="api_key_revoke"),
    path("settings/my-keys/", people.my_keys, name="my_keys"),
    path("settings/my-keys/<uuid:pk>/revoke/", people.my_key_revoke, name="my_key_revoke"),
    path("settings/members/", people.members, name="members"),
    path("settings/members/new/", people.member_add, name="member_add"),
    path("settings/members/<uuid:pk>/", people.member_edit, name="member_edit"),
    path("settings/members/<uuid:pk>/remove/", people.member_remove, name="member_remove"),
    path("settings/members/<uuid:pk>/deactivate/", people.member_deactivate, name="member_deactivate"),
    path("settings/members/<uuid:pk>/reactivate/", people.member_reactivate, name="member_reactivate"),
    path("settings/members/<uuid:pk>/password-link/", people.member_password_link, name="member_password_link"),
    path("settings/notifications/", notification_views.notifications, name="notifications"),
    path("settings/notifications/new/", notification_views.endpoint_create, name="notification_create"),
    path("settings/notifications/<uuid:pk>/", notification_views.endpoint_detail, name="notification_endpoint"),
    path("settings/notifications/<uuid:pk>/edit/", notification_views.endpoint_edit, name="notification_edit"),
    path(
        "settings/notifications/<uuid:pk>/rotate/",
        notification_views.endpoint_rotate_secret,
        name="notification_rotate",
    ),
    path("settings/notifications/<uuid:pk>/test/", notification_views.endpoint_test, name="notification_test"),
    path("settings/notifications/<uuid:pk>/delete/", notification_views.endpoint_delete, name="notification_delete"),
    path(
        "settings/notifications/deliveries/<uuid:pk>/redeliver/",
        notification_views.delivery_redeliver,
        name="notification_redeliver",
    ),
    path("settings/schedules/", schedule_views.schedule_list, name="schedules"),
    path("settings/schedules/<slug:name>/run/", schedule_views.schedule_run, name="schedule_run"),
    # Directory
    path("directory/", registry_views.directory, name="directory"),
    path("directory/<str:tab>/", registry_views.directory, name="directory_tab"),
    path("templates/new/", registry_views.template_create, name="template_create"),
    path("templates/<uuid:pk>/edit/", registry_views.template_edit, name="template_edit"),
    path("versions/new/", registry_views.version_create, name="version_create"),
    path("versions/new/parents/", registry_views.version_parent_options, name="version_parent_options"),
    path("versions/<uuid:pk>/", registry_views.version_detail, name="version_detail"),
    path("versions/<uuid:pk>/transition/", registry_views.version_transition, name="version_transition"),
    path("versions/<uuid:pk>/evaluations/new/", registry_views.version_evaluation, name="version_evaluation"),
    # Registry's New instance modal with the policy the instance starts under (the binding is policies').
    path("instances/new/", policy_views.instance_create, name="instance_create"),
    path("instances/new/versions/", registry_views.instance_version_options, name="instance_version_options"),
    path("instances/<uuid:pk>/", registry_views.instance_detail, name="instance_detail"),
    path("instances/<uuid:pk>/transition/", registry_views.instance_transition, name="instance_transition"),
    path("evaluations/", registry_views.evaluations, name="evaluations"),
    path("federation/", registry_views.federation, name="federation"),
    path("providers/new/", registry_views.provider_create, name="provider_create"),
    path("providers/<uuid:pk>/edit/", registry_views.provider_edit, name="provider_edit"),
    path("environments/new/", registry_views.environment_create, name="environment_create"),
    path("environments/<uuid:pk>/edit/", registry_views.environment_edit, name="environment_edit"),
    # Policies, cost, incidents
    path("policies/", policy_views.policy_list, name="policies"),
    path("policies/new/", policy_views.policy_create, name="policy_create"),
    path("policies/<uuid:pk>/", policy_views.policy_edit, name="policy_edit"),
    path("policies/<uuid:pk>/simulate/", policy_views.policy_simulate, name="policy_simulate"),
    path("policies/<uuid:pk>/delete/", policy_views.policy_delete, name="policy_delete"),
    path("policies/<uuid:pk>/attach/", policy_views.policy_attach, name="policy_attach"),
    path("instances/<uuid:pk>/policy/", policy_views.instance_policy, name="instance_policy"),
    path("instances/<uuid:pk>/decisions/", policy_views.instance_decisions, name="instance_decisions"),
    path("cost/", ledger_views.cost, name="cost"),
    path("cost/prices/", ledger_views.prices, name="cost_prices"),
    path("cost/prices/<uuid:pk>/delete/", ledger_views.price_delete, name="cost_price_delete"),
    path("cost/budgets/new/", ledger_views.budget_create, name="cost_budget_create"),
    path("cost/budgets/<uuid:pk>/edit/", ledger_views.budget_edit, name="cost_budget_edit"),
    path("cost/budgets/<uuid:pk>/delete/", ledger_views.budget_delete, name="cost_budget_delete"),
    path("cost/budget-alerts/<uuid:pk>/ack/", ledger_views.budget_alert_acknowledge, name="cost_budget_alert_ack"),
    path("incidents/", policy_views.incidents, name="incidents"),
    # Approvals
    path("approvals/", approval_views.approval_center, name="approvals"),
    path("approvals/pending/", approval_views.pending_list, name="approvals_pending"),
    path("approvals/<uuid:pk>/decide/", approval_views.approval_decide, name="approval_decide"),
    # Audit
    path("audit/", audit_views.audit_log, name="audit"),
]
