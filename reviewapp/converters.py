"""URL converters of the project, registered once on import (the URL modules import this module).

``<id:name>``: a non-negative integer that fits a 64-bit id; a longer or larger number does not match the
URL (404) instead of reaching the database driver.
"""

from django.urls import register_converter

from reviewapp.inputs import BoundedIntConverter

register_converter(BoundedIntConverter, "id")
