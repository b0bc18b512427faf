"""A method's parameters inside the library: every key known, unset ones from the family's defaults.

The workflow checks each config key against ``config/schema.yaml`` before any job runs. The library's
own entry points take the same entries from Python (``fit_patchcore(samples, folder, params)``,
``PNI(params)``, ``fit_puad(..., params)``) and hold them to the same rule: a key the family does not
know stops with one :class:`ConfigError` naming it and the nearest known key, instead of the method
silently running with that parameter's default. ``tests/test_config_blocks.py`` checks that each
family's known keys are exactly its schema entry's keys.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import Any

from anomalyflow.errors import ConfigError


def check_known(params: Mapping[str, Any] | None, known: Iterable[str], *, what: str) -> None:
    """Raise :class:`ConfigError` for the first key of ``params`` (sorted) that is not in ``known``.

    ``what`` names the owner in the message (``"patchcore"``, ``"puad fusion_weights"``), e.g.
    ``patchcore: parameter 'coreset_fractoin' is not known; did you mean 'coreset_fraction'?``.
    """
    known = sorted(known)
    unknown = sorted(set(params or {}) - set(known), key=str)
    if not unknown:
        return
    key = str(unknown[0])
    hint = difflib.get_close_matches(key, known, n=1)
    suggestion = f"did you mean '{hint[0]}'?" if hint else f"known: {', '.join(known)}"
    raise ConfigError(f"{what}: parameter '{key}' is not known; {suggestion}")


def with_defaults(params: Mapping[str, Any] | None, defaults: Mapping[str, Any], *, what: str,
                  references: Iterable[str] = ("family",)) -> dict[str, Any]:
    """``defaults`` updated by the non-null entries of ``params`` (a method's merged config entry).

    ``references`` are keys of a config entry that name other things rather than set a parameter
    (``family``; a refined PNI's ``base``): accepted, and left out of the result. A null value means
    "the default" (the schema's null for an inherited key). Raises :class:`ConfigError` for any other
    key not in ``defaults`` (see :func:`check_known`).
    """
    check_known(params, [*defaults, *references], what=what)
    return {**defaults, **{k: v for k, v in (params or {}).items() if k in defaults and v is not None}}
