# /api/v1/api-keys/ is served by registry.api.keys: tenancy.api.views.ApiKeyViewSet with POST, since a key
# may be bound to an instance and that binding is registry's.
urlpatterns: list = []
