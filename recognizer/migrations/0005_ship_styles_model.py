"""Ship digitcnn-v2-styles-seed1 and let it take over from the first shipped model.

The second shipped model reads the handwriting styles (slashed zero, flagged
one, barred seven, ...) and carries a calibration temperature. It is
registered from recognizer/weights/manifest.json as `builtin:<file>` and made
active only where nobody chose otherwise: when the active version is the first
shipped model (`builtin:digitcnn-v1-seed1.pt`) or when none is. A version an
operator trained and activated stays active; the new one is there to activate
from the admin.

The first model's file stays in recognizer/weights/ because existing
databases have it registered (and may roll back to it). Reversing this
migration hands activation back to the first model if the second one is
active; the second one's row stays, since drawings may name it.
"""

import json
from pathlib import Path

from django.db import migrations

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
MANIFEST = WEIGHTS_DIR / "manifest.json"
SHIPPED_FILE = "digitcnn-v2-styles-seed1.pt"
REPLACES = "builtin:digitcnn-v1-seed1.pt"


def read_manifest(manifest_path):
    """(file name, sha256, version, manifest) or None when it is not this model's."""
    try:
        manifest = json.loads(Path(manifest_path).read_text())
        name, sha256, version = manifest["file"], manifest["sha256"], manifest["version"]
    except (OSError, ValueError, KeyError, TypeError):
        # A damaged manifest must not stop the database from being set up.
        return None
    # A later shipped model's manifest is its own migration's business.
    if name != SHIPPED_FILE or not (Path(manifest_path).parent / name).is_file():
        return None
    return name, sha256, version, manifest


def ship_styles_model(apps, schema_editor, manifest_path=None):
    ModelVersion = apps.get_model("recognizer", "ModelVersion")
    read = read_manifest(manifest_path or MANIFEST)
    if read is None:
        return
    name, sha256, version, manifest = read
    shipped = ModelVersion.objects.filter(version=version).first()
    if shipped is None:
        shipped = ModelVersion.objects.create(
            version=version,
            path=f"builtin:{name}",
            sha256=sha256,
            size_bytes=(Path(manifest_path or MANIFEST).parent / name).stat().st_size,
            architecture=manifest.get("architecture", "digitcnn-v1"),
            is_active=False,
            training=manifest.get("training", {}),
            metrics=manifest.get("metrics", {}),
            notes="The model shipped with the site (recognizer/weights/).",
        )
    active = ModelVersion.objects.filter(is_active=True).first()
    if active is not None and active.path != REPLACES:
        return
    # One active row at a time (a unique constraint): clear first, then set.
    ModelVersion.objects.filter(is_active=True).update(is_active=False)
    ModelVersion.objects.filter(pk=shipped.pk).update(is_active=True)


def hand_back_to_first_model(apps, schema_editor, manifest_path=None):
    ModelVersion = apps.get_model("recognizer", "ModelVersion")
    read = read_manifest(manifest_path or MANIFEST)
    first = ModelVersion.objects.filter(path=REPLACES).order_by("id").first()
    if read is None or first is None:
        return
    if not ModelVersion.objects.filter(version=read[2], is_active=True).exists():
        return
    ModelVersion.objects.filter(is_active=True).update(is_active=False)
    ModelVersion.objects.filter(pk=first.pk).update(is_active=True)


class Migration(migrations.Migration):

    dependencies = [
        ("recognizer", "0004_review_groups"),
    ]

    operations = [
        migrations.RunPython(ship_styles_model, hand_back_to_first_model),
    ]
