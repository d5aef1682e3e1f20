"""The two admin roles: Reviewers (approve and reject) and Model managers."""

from django.db import migrations

# Permissions by model; default ones are created by Django after migrating,
# so a fresh database gets them here first, with Django's own names.
GROUPS = {
    "Reviewers": {
        "drawing": ["view_drawing", "review_drawing"],
        "modelversion": ["view_modelversion"],
    },
    "Model managers": {
        "drawing": ["view_drawing", "change_drawing", "review_drawing", "relabel_drawing",
                    "export_drawings"],
        "modelversion": ["view_modelversion", "change_modelversion", "activate_modelversion"],
    },
}

NAMES = {
    "review_drawing": "Can approve and reject drawings",
    "relabel_drawing": "Can relabel drawings",
    "export_drawings": "Can export drawings",
    "activate_modelversion": "Can activate (or roll back to) a model version",
}

VERBOSE = {"drawing": "drawing", "modelversion": "model version"}


def add_groups(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    Permission = apps.get_model("auth", "Permission")
    Group = apps.get_model("auth", "Group")
    for group_name, by_model in GROUPS.items():
        group, _ = Group.objects.get_or_create(name=group_name)
        for model, codenames in by_model.items():
            content_type, _ = ContentType.objects.get_or_create(
                app_label="recognizer", model=model
            )
            for codename in codenames:
                default_name = f"Can {codename.split('_', 1)[0]} {VERBOSE[model]}"
                permission, _ = Permission.objects.get_or_create(
                    content_type=content_type, codename=codename,
                    defaults={"name": NAMES.get(codename, default_name)},
                )
                group.permissions.add(permission)


def remove_groups(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Group.objects.filter(name__in=list(GROUPS)).delete()


class Migration(migrations.Migration):

    dependencies = [
        ("recognizer", "0003_drawing_review"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.RunPython(add_groups, remove_groups),
    ]
