"""ioc: monitoring backend for a provincial Intelligent Operations Centre (IOC)."""

__version__ = "0.1.0"
