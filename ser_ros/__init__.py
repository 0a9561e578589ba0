"""ser_ros: speech emotion recognition for the SPRING social robot."""

__version__ = '0.1.0'
