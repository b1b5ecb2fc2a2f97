"""Tidings: self-hosted email marketing in which every privacy promise is kept by the software."""

from tidings.celery import app as celery_app

__all__ = ["celery_app"]
