"""SA3 Studio: an audio editor that regenerates selected regions in place with Stable Audio 3."""

__version__ = "0.1.0"
