import subprocess
import sys

import cloudship


def test_all_names_resolve() -> None:
    for name in cloudship.__all__:
        assert getattr(cloudship, name) is not None
    assert sorted(cloudship.__all__) == cloudship.__all__


def test_import_is_lazy() -> None:
    code = (
        "import sys, cloudship; "
        "heavy = [m for m in sys.modules if m.split('.')[0] in "
        "('docker', 'boto3', 'azure', 'pydantic', 'httpx', 'rich', 'typer')]; "
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_api_import_does_not_load_docker_or_cloud_sdks() -> None:
    code = (
        "import sys; from cloudship import ship, Shipment, Target; "
        "print([m for m in sys.modules if m.split('.')[0] in ('docker', 'boto3', 'azure')])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
