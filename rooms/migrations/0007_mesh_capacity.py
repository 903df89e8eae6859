from django.db import migrations, models

# The most people a mesh room may hold (rooms.protocol.CAPACITY_MAX), frozen
# here as migrations must be.
MESH_MAX = 12


def clamp_mesh_rooms(apps, schema_editor):
    """Give a mesh room over the limit (only the admin could make one) the mesh's 12 seats.

    Its owner chose direct media (no server sees it): keeping that and the
    seats a mesh can carry beats moving the room to the media server. People
    already in it stay; the capacity is checked at each join.
    """
    Room = apps.get_model("rooms", "Room")
    Room.objects.filter(media_mode="mesh", capacity__gt=MESH_MAX).update(capacity=MESH_MAX)


class Migration(migrations.Migration):
    dependencies = [
        ("rooms", "0006_media_return"),
    ]

    operations = [
        migrations.RunPython(clamp_mesh_rooms, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="room",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(("media_mode", "mesh"), _negated=True),
                    ("capacity__lte", 12),
                    _connector="OR",
                ),
                name="room_mesh_capacity",
            ),
        ),
    ]
