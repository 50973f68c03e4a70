"""``POST /api/v1/evaluation-callbacks/<token>/``: where an evaluation harness posts the result of a run the
registry requested (the ``evaluation.requested`` event hands the URL out; ``registry.evaluation_requests``
decides every answer). The token in the path is the only credential: no API key, no session."""

from __future__ import annotations

from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from arm.serializers import StrictCharField, StrictFloatField, StrictSerializer
from registry.choices import EvalResultStatus
from registry.evaluation_requests import DEFAULT_SUITE, evaluation_callback
from registry.models import EvaluationResult


class EvaluationCallbackSerializer(StrictSerializer):
    result = serializers.ChoiceField(choices=EvalResultStatus.choices)
    score = StrictFloatField(required=False, allow_null=True)
    details = serializers.DictField(required=False, default=dict)
    # A link to the run (the CI job's page), kept in the result's details as "url".
    url = serializers.URLField(required=False, allow_blank=True, default="", max_length=2000)
    suite = StrictCharField(
        required=False, default=DEFAULT_SUITE, max_length=EvaluationResult._meta.get_field("suite").max_length
    )


class EvaluationCallbackView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    # Not in the OpenAPI reference: clients never build this URL, the event gives it to them whole
    # (docs/notifications.md documents the body and every answer).
    schema = None

    def post(self, request, token: str):
        body = EvaluationCallbackSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        result = evaluation_callback(
            token,
            status=data["result"],
            score=data.get("score"),
            details=data["details"],
            url=data["url"],
            suite=data["suite"],
        )
        version = result.version
        return Response(
            {
                "evaluation": str(result.pk),
                "version": str(version.pk),
                "status": result.status,
                "eval_status": version.eval_status,
                "lifecycle_state": version.lifecycle_state,
            },
            status=status.HTTP_201_CREATED,
        )
