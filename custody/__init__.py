"""custody: preserve body-camera footage and keep a tamper-evident chain of custody."""

__version__ = "0.1.0"
TOOL = f"custody {__version__}"
