from django.db import models


class Role(models.TextChoices):
    VIEWER = "viewer", "Viewer"
    OPERATOR = "operator", "Operator"
    APPROVER = "approver", "Approver"
    COMPLIANCE = "compliance", "Compliance"
    ADMIN = "admin", "Admin"
    RUNTIME = "runtime", "Runtime (API keys only)"


# Roles that may read everything in their tenant. `runtime` is deliberately absent: a runtime key
# only heartbeats, evaluates and reads its own approval requests.
READ_ROLES = frozenset({Role.VIEWER, Role.OPERATOR, Role.APPROVER, Role.COMPLIANCE, Role.ADMIN})
MEMBER_ROLES = tuple(r for r in Role.values if r != Role.RUNTIME)
