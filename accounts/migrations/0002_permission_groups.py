"""The groups "viewer", "operator" and "admin", with the permissions of issue 11.

post_migrate (which creates content types and permissions) has not run yet on a fresh database
when this runs, so the execution's content type and its four permissions are created here when
missing; post_migrate then finds them and leaves them be. Reversing removes the groups only.
"""

from django.db import migrations

PERMISSIONS = {
    "view_execution": "Can view execution",
    "execute_workflow": "Can execute workflows",
    "cancel_execution": "Can cancel and re-run executions",
    "manage_c4c": "Can manage tokens, schedules and pruning",
}
GROUPS = {
    "viewer": ["view_execution"],
    "operator": ["view_execution", "execute_workflow", "cancel_execution"],
    "admin": ["view_execution", "execute_workflow", "cancel_execution", "manage_c4c"],
}


def create_groups(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    Permission = apps.get_model("auth", "Permission")
    Group = apps.get_model("auth", "Group")
    execution, _ = ContentType.objects.get_or_create(app_label="executions", model="execution")
    permissions = {
        codename: Permission.objects.get_or_create(
            content_type=execution, codename=codename, defaults={"name": name}
        )[0]
        for codename, name in PERMISSIONS.items()
    }
    for group_name, codenames in GROUPS.items():
        group, _ = Group.objects.get_or_create(name=group_name)
        group.permissions.add(*(permissions[codename] for codename in codenames))


def remove_groups(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=GROUPS).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_api_token"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("executions", "0005_permissions"),
    ]

    operations = [migrations.RunPython(create_groups, remove_groups)]
