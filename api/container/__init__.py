"""Builds the object graph once from settings; every other module receives its collaborators.

The composition root, and the one place of the edge that holds the engine: it makes it and
hands it to the domain's services, which open their own transactions (``core.db``). Secret
files are read through ``api.ops.secrets``. ``graph`` holds the typed ``Services`` and
``build_services``; ``foundation`` what every service is built over; ``builders`` one small
builder per service; ``sign_in`` the holder sign-in choice.
"""

from api.container.graph import Services, build_services

__all__ = ["Services", "build_services"]
