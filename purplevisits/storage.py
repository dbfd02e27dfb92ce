"""Static files storage of production (settings.STORAGES["staticfiles"])."""

from __future__ import annotations

from whitenoise.storage import CompressedManifestStaticFilesStorage


class StaticFilesStorage(CompressedManifestStaticFilesStorage):
    """whitenoise's hashed and compressed files, with the ``import … from "./x.js"`` of
    ES modules rewritten to the hashed names too: without it a module imported by
    another stayed under its plain name (a short cache, and after an upgrade a page
    could pair a new module with an old import)."""

    support_js_module_import_aggregation = True
