"""Register the first model shipped in recognizer/weights/ as a model version.

After `migrate` the site recognizes digits at once, without anyone training
first. The manifest beside the weights says which file it is and how it was
made; without a manifest (or without its file) this does nothing. The shipped
version becomes active only when no other version is.

This migration always reads the first shipped model's own manifest
(digitcnn-v1-seed1), so a database set up today holds the same rows as one
set up when it was the only model; each later shipped model is registered,
and takes over from its predecessor, by a migration of its own.
"""

import json
from pathlib import Path

from django.db import migrations

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
MANIFEST = WEIGHTS_DIR / "digitcnn-v1-seed1.manifest.json"


def register_shipped_model(apps, schema_editor, manifest_path=None):
    ModelVersion = apps.get_model("recognizer", "ModelVersion")
    manifest_path = Path(manifest_path or MANIFEST)
    if not manifest_path.is_file():
        return
    try:
        manifest = json.loads(manifest_path.read_text())
        name = manifest["file"]
        sha256 = manifest["sha256"]
        version = manifest["version"]
    except (OSError, ValueError, KeyError, TypeError):
        # A damaged manifest must not stop the database from being set up;
        # the site then runs without a model until one is trained.
        return
    weights = manifest_path.parent / name
    if Path(name).name != name or not weights.is_file():
        return
    if ModelVersion.objects.filter(version=version).exists():
        return
    ModelVersion.objects.create(
        version=version,
        path=f"builtin:{name}",
        sha256=sha256,
        size_bytes=weights.stat().st_size,
        architecture=manifest.get("architecture", "digitcnn-v1"),
        is_active=not ModelVersion.objects.filter(is_active=True).exists(),
        training=manifest.get("training", {}),
        metrics=manifest.get("metrics", {}),
        notes="The model shipped with the site (recognizer/weights/).",
    )


def unregister_shipped_model(apps, schema_editor, manifest_path=None):
    ModelVersion = apps.get_model("recognizer", "ModelVersion")
    manifest_path = Path(manifest_path or MANIFEST)
    try:
        version = json.loads(manifest_path.read_text())["version"]
    except (OSError, ValueError, KeyError, TypeError):
        return
    ModelVersion.objects.filter(version=version, path__startswith="builtin:").delete()


class Migration(migrations.Migration):

    dependencies = [
        ("recognizer", "0001_initial"),
    ]

    operations = [
        migrations.RunPython(register_shipped_model, unregister_shipped_model),
    ]
