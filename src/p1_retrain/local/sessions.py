"""boto3 sessions of the local stack that share one botocore model loader.

A fresh session reads each service's model and endpoint rules from disk again (about half a second for the
stack's eleven clients); the loader caches what it has read, so the stack, its state machines' task clients
and every later stack in the process share it.
"""

from __future__ import annotations

import functools
from typing import Any

import boto3
import botocore.loaders
import botocore.session


@functools.cache
def _loader() -> botocore.loaders.Loader:
    return botocore.session.Session().get_component("data_loader")


def session(region: str, **credentials: Any) -> boto3.session.Session:
    """A new boto3 session in ``region`` (with ``credentials`` when given) over the shared loader."""
    core = botocore.session.Session()
    core.register_component("data_loader", _loader())
    return boto3.session.Session(botocore_session=core, region_name=region, **credentials)
