"""Static files under content-hashed names: `/assets/site.3f2a9c1b7d4e.css`, cached for a year.

The files are the site's own (public_site/static) and the few Swagger UI files the API's docs page
needs, from the `swagger-ui-bundle` package, so no page loads anything from another origin. The
name carries a hash of the content: a changed file gets a new URL, so every URL can be cached
forever (`immutable`).
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

SITE_DIR = os.path.join(os.path.dirname(__file__), "static")
SWAGGER_FILES = ("swagger-ui.css", "swagger-ui-bundle.js")
LONG_CACHE = "public, max-age=31536000, immutable"


@dataclass(frozen=True)
class Asset:
    path: str        # on disk
    url_name: str    # `site.<hash>.css`


class Assets:
    """The logical name -> hashed name map, built once per app."""

    def __init__(self, sources: dict[str, str]) -> None:
        self.by_name: dict[str, Asset] = {}
        self.by_url: dict[str, Asset] = {}
        for name, path in sources.items():
            with open(path, "rb") as f:
                digest = hashlib.sha256(f.read()).hexdigest()[:12]
            stem, dot, ext = name.rpartition(".")
            asset = Asset(path, f"{stem}.{digest}.{ext}" if dot else f"{name}.{digest}")
            self.by_name[name] = asset
            self.by_url[asset.url_name] = asset

    def url_name(self, name: str) -> str:
        return self.by_name[name].url_name

    def find(self, url_name: str) -> Asset | None:
        return self.by_url.get(url_name)


def collect() -> Assets:
    import swagger_ui_bundle

    sources = {name: os.path.join(SITE_DIR, name) for name in sorted(os.listdir(SITE_DIR))
               if not name.startswith(".")}
    for name in SWAGGER_FILES:
        sources[name] = os.path.join(swagger_ui_bundle.swagger_ui_path, name)
    return Assets(sources)
