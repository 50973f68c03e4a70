"""Event types of the members page: people added, removed, deactivated and reactivated, set-password links."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('audit', '0007_checkpoint_append_only'),
    ]

    operations = [
        migrations.AlterField(
            model_name='changerecord',
            name='event_type',
            field=models.CharField(choices=[('TEMPLATE_CREATED', 'Template Created'), ('TEMPLATE_UPDATED', 'Template Updated'), ('TEMPLATE_DELETED', 'Template Deleted'), ('VERSION_CREATED', 'Version Created'), ('VERSION_TRANSITIONED', 'Version Transitioned'), ('INTEGRITY_VERIFIED', 'Integrity Verified'), ('INTEGRITY_FAILED', 'Integrity Failed'), ('INTEGRITY_SWEEP', 'Integrity Sweep'), ('EVALUATION_RECORDED', 'Evaluation Recorded'), ('INSTANCE_CREATED', 'Instance Created'), ('INSTANCE_UPDATED', 'Instance Updated'), ('INSTANCE_TRANSITIONED', 'Instance Transitioned'), ('PROVIDER_CREATED', 'Provider Created'), ('PROVIDER_UPDATED', 'Provider Updated'), ('ENVIRONMENT_CREATED', 'Environment Created'), ('ENVIRONMENT_UPDATED', 'Environment Updated'), ('POLICY_CREATED', 'Policy Created'), ('POLICY_UPDATED', 'Policy Updated'), ('POLICY_DELETED', 'Policy Deleted'), ('POLICY_ATTACHED', 'Policy Attached'), ('POLICY_DETACHED', 'Policy Detached'), ('APPROVAL_REQUESTED', 'Approval Requested'), ('APPROVAL_DECIDED', 'Approval Decided'), ('APPROVAL_EXPIRED', 'Approval Expired'), ('APPROVAL_USED', 'Approval Used'), ('API_KEY_CREATED', 'Api Key Created'), ('API_KEY_REVOKED', 'Api Key Revoked'), ('MEMBERSHIP_CHANGED', 'Membership Changed'), ('MEMBER_ADDED', 'Member Added'), ('MEMBER_REMOVED', 'Member Removed'), ('USER_DEACTIVATED', 'User Deactivated'), ('USER_REACTIVATED', 'User Reactivated'), ('PASSWORD_LINK_CREATED', 'Password Link Created'), ('PASSWORD_SET', 'Password Set'), ('TENANT_CREATED', 'Tenant Created'), ('LOGIN_FAILED', 'Login Failed'), ('ACCOUNT_LOCKED_OUT', 'Account Locked Out')], max_length=40),
        ),
    ]
