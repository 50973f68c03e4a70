"""The deploy helper against a live ARM: create an instance by names, activate it and mint its runtime key,
drain, retire; retiring revokes the instance's keys (and only its keys), and can be run again."""

from __future__ import annotations

import pytest

from arm_sdk import Client, Conflict, Deployer, NotFound, Unauthorized


def key_for(arm, instance: str | None, name: str) -> dict:
    body = {"name": name, "roles": ["runtime"], **({"instance": instance} if instance else {})}
    with arm.admin() as admin:
        return admin.api("POST", "/api/v1/api-keys/", json=body)


def test_deploy_by_names_then_drain_and_retire_revoking_the_instances_keys(arm):
    neighbour = arm.agent()
    with arm.admin() as admin:
        body = {"name": "Deploy-Policy", "autonomy_tier": 5, "allowed_tools": ["*"]}
        policy = admin.api("POST", "/api/v1/policies/", json=body)
        deployer = Deployer(admin)
        deployment = deployer.deploy(
            template="SDK-AGENT",  # names are unique ignoring case, as ARM compares them
            version_label="1.0.0",
            environment="sdk-DEV",
            provider="sdk-local",
            policy="deploy-policy",
            name="deployed-by-sdk",
            runtime_key=True,
        )
        instance = deployment.instance
        assert instance["state"] == "ACTIVE" and instance["policy"] == policy["id"]
        assert deployment.key["instance"] == instance["id"] and deployment.key["roles"] == ["runtime"]
        second = key_for(arm, instance["id"], "second key of the instance")

        with Client(arm.url, deployment.runtime_key, instance["id"]) as runtime:
            assert runtime.evaluate("email_send", {}).allowed  # tier 5: the new runtime works

        assert deployer.drain(instance["id"], "moving to v2")["state"] == "DRAINING"
        retired = deployer.retire(instance["id"], "replaced by v2")
        assert retired.instance["state"] == "RETIRED"
        revoked = {k["id"]: k["revoked_at"] for k in retired.revoked_keys}
        assert set(revoked) == {deployment.key["id"], second["id"]} and all(revoked.values())

        with Client(arm.url, deployment.runtime_key, instance["id"], retries=0) as runtime:
            with pytest.raises(Unauthorized):
                runtime.evaluate("email_send", {})
        with neighbour.client() as other:  # another instance's key is untouched
            assert other.evaluate("crm_lookup", {}).allowed

        again = deployer.retire(instance["id"])  # safe to run again: nothing left to do
        assert again.instance["state"] == "RETIRED" and again.revoked_keys == []


def test_retire_drains_a_live_instance_first(arm):
    agent = arm.agent()
    with arm.admin() as admin:
        retired = Deployer(admin).retire(agent.instance)
    assert retired.instance["state"] == "RETIRED" and len(retired.revoked_keys) == 1


def test_refusals_carry_armss_message(arm):
    agent = arm.agent()
    with arm.admin() as admin:
        deployer = Deployer(admin)
        with pytest.raises(Conflict) as raised:
            deployer.activate(agent.instance)  # already ACTIVE
        assert raised.value.code == "invalid_transition" and "ACTIVE" in raised.value.message
        with pytest.raises(NotFound):
            deployer.create_instance(version=arm._ids["version"], environment="no-such-env", provider="sdk-local")
