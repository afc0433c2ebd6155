"""pickspin: Pick (route each prompt to a model × backend) and Spin (scale backends to zero)."""

__version__ = "0.1.0"
