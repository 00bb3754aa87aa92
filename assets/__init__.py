"""Files shipped with livevis: sample photos and small trained weights."""

from pathlib import Path

ASSETS_DIR = Path(__file__).resolve().parent
SAMPLES_DIR = ASSETS_DIR / "samples"


def sample_images() -> list[Path]:
    """The bundled sample photos, sorted by name."""
    return sorted(SAMPLES_DIR.glob("*.jpg"))
