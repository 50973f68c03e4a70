"""OpenAPI helpers: the error body every endpoint answers with, documented per status code."""

from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers

from arm import schema_docs


class ErrorSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Stable machine-readable code, e.g. validation_error, not_found.")
    message = serializers.CharField(help_text="Human-readable explanation.")
    errors = serializers.DictField(required=False, help_text="Per-field messages for validation errors.")


def _error(description: str) -> OpenApiResponse:
    return OpenApiResponse(ErrorSerializer, description=description)


ERRORS_READ = {
    400: _error("Invalid query parameters."),
    414: OpenApiResponse(description="Request line too long (over 4094 bytes): refused by the HTTP server."),
    401: _error("No or invalid credentials."),
    403: _error("Your role does not allow this."),
    404: _error("Not found (or another tenant's)."),
    503: _error(
        "database_busy: a collision with another transaction (deadlock, serialization failure, lock timeout) "
        "rolled the request back; retry it after Retry-After (1 s). database_unavailable: the database cannot "
        "be reached; retry after Retry-After."
    ),
}
ERRORS_WRITE = {
    **ERRORS_READ,
    400: _error("Validation error (per field)."),
    405: _error("Method not allowed (versions are write-once)."),
    409: _error("Invalid transition or conflicting state (e.g. a name already taken)."),
    413: _error("Request body too large."),
    415: _error("Unsupported media type: send application/json."),
}

# OpenAPI links: what a client (and schemathesis' stateful phase) can do next with what an operation
# returned. {operationId: {status: {link name: (target operationId, {parameter: runtime expression})}}}
_ID = {"id": "$response.body#/id"}
LINKS = {
    "v1_environments_create": {
        "201": {
            "GetEnvironment": ("v1_environments_retrieve", _ID),
            "EditEnvironment": ("v1_environments_partial_update", _ID),
        }
    },
    "v1_providers_create": {
        "201": {"GetProvider": ("v1_providers_retrieve", _ID), "EditProvider": ("v1_providers_partial_update", _ID)}
    },
    "v1_templates_create": {
        "201": {
            "GetTemplate": ("v1_templates_retrieve", _ID),
            "EditTemplate": ("v1_templates_partial_update", _ID),
            "DeleteTemplate": ("v1_templates_destroy", _ID),
        }
    },
    "v1_versions_create": {
        "201": {
            "GetVersion": ("v1_versions_retrieve", _ID),
            "TransitionVersion": ("v1_versions_transition_create", _ID),
            "VersionLineage": ("v1_versions_lineage_retrieve", _ID),
            "VersionDiff": ("v1_versions_diff_retrieve", _ID),
            "ListEvaluations": ("v1_versions_evaluations_list", _ID),
            "RecordEvaluation": ("v1_versions_evaluations_create", _ID),
        }
    },
    "v1_instances_create": {
        "201": {
            "GetInstance": ("v1_instances_retrieve", _ID),
            "EditInstance": ("v1_instances_partial_update", _ID),
            "TransitionInstance": ("v1_instances_transition_create", _ID),
            "Heartbeat": ("v1_instances_heartbeat_create", _ID),
        }
    },
    "v1_policies_create": {
        "201": {
            "GetPolicy": ("v1_policies_retrieve", _ID),
            "EditPolicy": ("v1_policies_partial_update", _ID),
            "SimulatePolicy": ("v1_policies_simulate_create", _ID),
            "DeletePolicy": ("v1_policies_destroy", _ID),
        }
    },
    "v1_api_keys_create": {
        "201": {"GetApiKey": ("v1_api_keys_retrieve", _ID), "RevokeApiKey": ("v1_api_keys_destroy", _ID)}
    },
    "policy_evaluate": {
        "200": {
            "GetDecision": ("v1_decisions_retrieve", {"id": "$response.body#/decision_id"}),
            "GetApproval": ("v1_approvals_retrieve", {"id": "$response.body#/approval"}),
            "ApproveApproval": ("v1_approvals_approve_create", {"id": "$response.body#/approval"}),
            "DenyApproval": ("v1_approvals_deny_create", {"id": "$response.body#/approval"}),
        }
    },
}

PAGE_SIZE_MAX = 1000


def _refs(node) -> set[str]:
    """Component names referenced anywhere in ``node`` (a request body, possibly wrapped in allOf)."""
    if isinstance(node, dict):
        found = {node["$ref"].rsplit("/", 1)[-1]} if isinstance(node.get("$ref"), str) else set()
        return found.union(*(_refs(value) for value in node.values()))
    if isinstance(node, list):
        return set().union(*(_refs(item) for item in node))
    return set()


def postprocess(result, generator, request, public):
    """drf-spectacular postprocessing hook (SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"]):

    - query parameters: an empty value (``?template=``) means "no filter", as django-filter and DRF read it;
    - ``page`` >= 1 and 1 <= ``page_size`` <= 1000, as the paginators enforce (400 otherwise);
    - every request body is closed (``additionalProperties: false``): the serializers refuse unknown keys
      (``arm.serializers.ClosedSerializerMixin``);
    - the OpenAPI ``links`` of ``LINKS``;
    - tags by resource, summaries, descriptions, the components' descriptions (never a serializer's
      docstring) and the examples of request, parameters and answers (``arm.schema_docs``,
      ``arm.schema_examples``)."""
    operations = {}
    for methods in result.get("paths", {}).values():
        for operation in methods.values():
            if not isinstance(operation, dict) or "operationId" not in operation:
                continue
            operations[operation["operationId"]] = operation
            for parameter in operation.get("parameters", []):
                if parameter.get("in") != "query":
                    continue
                parameter["allowEmptyValue"] = True
                if parameter["name"] == "page":
                    parameter["schema"] = {**parameter["schema"], "minimum": 1}
                elif parameter["name"] == "page_size":
                    parameter["schema"] = {**parameter["schema"], "minimum": 1, "maximum": PAGE_SIZE_MAX}
                    parameter["description"] = f"Number of results to return per page (at most {PAGE_SIZE_MAX})."
    # An empty heartbeat may be sent as no body at all or as a JSON null.
    heartbeat = operations["v1_instances_heartbeat_create"]["requestBody"]
    heartbeat["required"] = False
    for media in heartbeat["content"].values():
        media["schema"] = {"nullable": True, "allOf": [media["schema"]]}
    components = result.get("components", {}).get("schemas", {})
    for operation in operations.values():
        for name in _refs(operation.get("requestBody", {})):
            components[name]["additionalProperties"] = False
    for operation_id, by_status in LINKS.items():
        responses = operations[operation_id]["responses"]
        for status_code, links in by_status.items():
            responses[status_code]["links"] = {
                name: {"operationId": target, "parameters": dict(parameters)}
                for name, (target, parameters) in links.items()
            }
            for target, _ in links.values():
                assert target in operations, f"link to unknown operation {target}"
    schema_docs.apply(operations, components)
    return result
