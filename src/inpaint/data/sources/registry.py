"""The built-in sources by name, and the class a data config's ``source`` or ``_target_`` names."""

from __future__ import annotations

from typing import Any

from inpaint.config import ConfigError, import_target
from inpaint.data.sources.celeba import CelebA
from inpaint.data.sources.celeba_hq import CelebAHQ
from inpaint.data.sources.folder import Folder
from inpaint.data.sources.places2 import Places2
from inpaint.data.sources.samples import Samples
from inpaint.data.sources.shards import Shards

BUILT_IN: dict[str, type[Any]] = {
    "places2": Places2,
    "celeba": CelebA,
    "celeba_hq": CelebAHQ,
    "folder": Folder,
    "samples": Samples,
    "shards": Shards,
}
# The sources whose images can be listed (and packed into shards).
SOURCES = tuple(name for name in BUILT_IN if name != "shards")


def source_class(source: str | None, target: str | None) -> type[Any]:
    """The class a data config's ``source`` (a built-in's name) or ``_target_`` (a class path) names."""
    if source and target:
        raise ConfigError(f"data config: either 'source' ({source!r}) or '_target_' ({target!r}), not both")
    if target:
        return import_target(target, "data config")
    if source in BUILT_IN:
        return BUILT_IN[source]
    raise ConfigError(
        f"data config: unknown data source {source!r}; expected one of {', '.join(BUILT_IN)}, or a _target_ naming a "
        "source class (docs/extending.md)"
    )
